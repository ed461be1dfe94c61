# Benchmarks: engine and server against what users run today, one run, one chart.
# `make bench` (well under 15 min on 2 cores), `make bench QUICK=1` (MiniLM only, ~4 min),
# more options through BENCH_ARGS (see `.venv/bin/python -m bench --help`).
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

bench: $(STAMP) $(DLC_VENV)/.installed $(INFINITY_STAMP)  ## benchmarks vs CrossEncoder/AWS sample/pipeline/DLC stack/Infinity (QUICK=1: short); writes docs/BENCHMARKS.md
	$(PY) -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

$(INFINITY_STAMP): $(INFINITY_REQS)
	rm -rf $(INFINITY_VENV)
	$(PYTHON) -m venv $(INFINITY_VENV)
	$(INFINITY_VENV)/bin/pip install --progress-bar off --no-deps -r $(INFINITY_REQS)
	$(INFINITY_VENV)/bin/python -W ignore -c "$(INFINITY_SMOKE)"
	touch $@

infinity-venv: $(INFINITY_STAMP)  ## .venv-infinity: Infinity 0.0.78 on the machine's torch 2.13.0 (a bench peer)

# The GPU path, checked and measured (docs/gpu.md): CUDA parity, OOM halving, pairs/s
# against CrossEncoder fp16/bf16, server against Infinity, share of the bf16 GEMM rate.
# `make device-kit` fills build/device-kit (wheels for a GPU machine without network,
# tokenizers); there `bash bench/device/run.sh OUT` runs the check with no .venv.
# Here `make gpu-check` runs it from .venv on a local GPU;
# GPU_CHECK_ARGS="--device cpu --quick" runs the same code on a CPU.
DEVICE_KIT ?= build/device-kit

.PHONY: gpu-check device-kit
device-kit: $(STAMP)  ## wheels + tokenizers for the GPU check on a machine without network (build/device-kit)
	$(PY) -m bench.device.prepare --dest $(DEVICE_KIT) $(DEVICE_KIT_ARGS)

gpu-check: $(STAMP) $(DEVICE_KIT)/manifest.json  ## GPU parity/OOM/throughput/server check (one GPU, < 8 min); writes bench/results/gpu-check-*.json
	$(PY) -m bench.gpu_check --kit $(DEVICE_KIT) $(GPU_CHECK_ARGS)

$(DEVICE_KIT)/manifest.json:
	$(MAKE) device-kit
