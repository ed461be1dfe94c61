# Benchmarks: engine and server against what users run today, one run, one chart.
# `make bench` (well under 15 min on 2 cores), `make bench QUICK=1` (MiniLM only, ~3 min),
# more options through BENCH_ARGS (see `.venv/bin/python -m bench --help`).
DLC_VENV ?= .venv-dlc

.PHONY: bench

bench: $(STAMP) $(DLC_VENV)/.installed  ## benchmarks vs CrossEncoder/aws-samples handler/pipeline/DLC stack (QUICK=1: short); writes docs/BENCHMARKS.md
	$(PY) -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

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
