# Benchmarks: engine and server against what users run today, one run, one chart.
# `make bench` (about 13-16 min on 2 cores), `make bench QUICK=1` (MiniLM only, ~4 min),
# more options through BENCH_ARGS (see `.venv/bin/python -m bench --help`).  Only the full
# run with default options rewrites docs/BENCHMARKS.md; others write bench/results/*.md.
DLC_VENV ?= .venv-dlc
# Infinity (infinity-emb), the peer server, in its own venv from a complete lock.
INFINITY_VENV  ?= .venv-infinity
export INFINITY_VENV  # bench/infinity_server.py reads it
INFINITY_STAMP := $(INFINITY_VENV)/.installed
INFINITY_REQS  := bench/infinity-requirements.txt
INFINITY_SMOKE := import torch, infinity_emb, sentence_transformers; \
	assert torch.__version__.startswith('2.13.0'), torch.__version__; \
	assert infinity_emb.__version__ == '0.0.78', infinity_emb.__version__

.PHONY: bench infinity-venv

bench: $(STAMP) $(DLC_VENV)/.installed $(INFINITY_STAMP)  ## benchmarks vs CrossEncoder/AWS sample/pipeline/DLC stack/Infinity (QUICK=1: short); a full run rewrites docs/BENCHMARKS.md
	$(PY) -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

$(INFINITY_STAMP): $(INFINITY_REQS)
	$(call locked_venv,INFINITY)

infinity-venv: $(INFINITY_STAMP)  ## .venv-infinity: Infinity 0.0.78 on the machine's torch 2.13.0 (a bench peer)

# The GPU path, checked and measured (docs/gpu.md): CUDA parity, OOM halving, pairs/s
# against CrossEncoder fp16/bf16, server against Infinity, share of the bf16 GEMM rate.
# `make device-kit` fills build/device-kit (wheels for a GPU machine without network,
# tokenizers); there `bash bench/device/run.sh OUT` runs the check with no .venv.
# Here `make gpu-check` runs it from .venv on a local GPU;
# GPU_CHECK_ARGS="--device cpu --quick" runs the same code on a CPU.
DEVICE_KIT ?= build/device-kit

# The GPU machine's library versions on this CPU (bench/device/machine-requirements.txt):
# the dry run in `make test` runs the check on them, as the GPU machine will.
MACHINE_VENV  ?= .venv-gpu-machine
export MACHINE_VENV  # tests/test_device_kit.py reads it
MACHINE_STAMP := $(MACHINE_VENV)/.installed
MACHINE_REQS  := bench/device/machine-requirements.txt
MACHINE_SMOKE := import torch, transformers, sentence_transformers, prometheus_client, requests, PIL; \
	assert torch.__version__.startswith('2.13.0'), torch.__version__; \
	assert transformers.__version__ == '5.17.0', transformers.__version__; \
	assert sentence_transformers.__version__ == '6.0.1', sentence_transformers.__version__

.PHONY: gpu-check device-kit gpu-machine-venv
gpu-machine-venv: $(MACHINE_STAMP)  ## .venv-gpu-machine: the GPU machine's transformers and sentence-transformers on this CPU (the device kit's dry run)

$(MACHINE_STAMP): $(MACHINE_REQS)
	$(call locked_venv,MACHINE)

TEST_DEPS += $(MACHINE_STAMP)

device-kit: $(STAMP)  ## wheels + tokenizers for the GPU check on a machine without network (build/device-kit)
	$(PY) -m bench.device.prepare --dest $(DEVICE_KIT) $(DEVICE_KIT_ARGS)

gpu-check: $(STAMP) $(DEVICE_KIT)/manifest.json  ## GPU parity/OOM/throughput/server check (one GPU, < 8 min); writes bench/results/gpu-check-*.json
	$(PY) -m bench.gpu_check --kit $(DEVICE_KIT) $(GPU_CHECK_ARGS)

$(DEVICE_KIT)/manifest.json:
	$(MAKE) device-kit
