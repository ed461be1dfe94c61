# Benchmarks: engine and server against what users run today, one run, one chart.
# `make bench` (well under 15 min on 2 cores), `make bench QUICK=1` (MiniLM only, ~3 min),
# more options through BENCH_ARGS (see `.venv/bin/python -m bench --help`).
DLC_VENV ?= .venv-dlc

.PHONY: bench

bench: $(STAMP) $(DLC_VENV)/.installed  ## benchmarks vs CrossEncoder/aws-samples handler/pipeline/DLC stack (QUICK=1: short); writes docs/BENCHMARKS.md
	$(PY) -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

# The GPU path checked and measured (CUDA parity, OOM splitting, server batching,
# pairs/s vs CrossEncoder fp16, share of bf16 peak); under 6 minutes on one GPU.
# GPU_CHECK_ARGS="--device cpu --quick" runs the same code on a CPU.
.PHONY: gpu-check
gpu-check: $(STAMP)  ## GPU parity/OOM/batching/throughput check (one GPU, < 6 min); writes bench/results/gpu-check-*.json
	$(PY) -m bench.gpu_check $(GPU_CHECK_ARGS)
