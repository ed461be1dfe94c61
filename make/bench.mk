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

# The GPU path checked and measured (CUDA parity, OOM splitting, server batching,
# pairs/s vs CrossEncoder fp16, share of bf16 peak); under 6 minutes on one GPU.
# GPU_CHECK_ARGS="--device cpu --quick" runs the same code on a CPU.
.PHONY: gpu-check
gpu-check: $(STAMP)  ## GPU parity/OOM/batching/throughput check (one GPU, < 6 min); writes bench/results/gpu-check-*.json
	$(PY) -m bench.gpu_check $(GPU_CHECK_ARGS)
