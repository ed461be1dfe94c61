# The official Hugging Face DLC serving stack (sagemaker-huggingface-inference-toolkit +
# multi-model-server) in its own venv, for the DLC parity test and server benchmarks.
# tests/dlc/requirements.txt is a complete lock, installed with --no-deps (see its header).

DLC_VENV  ?= .venv-dlc
export DLC_VENV  # bench/dlc_stack.py reads it
DLC_STAMP := $(DLC_VENV)/.installed
DLC_REQS  := tests/dlc/requirements.txt
# Imported by the stack when it serves code/inference.py: a missing package fails here.
DLC_SMOKE := import torch, transformers, numpy, tokenizers, mms.model_service_worker, \
	sagemaker_huggingface_inference_toolkit.serving, \
	sagemaker_huggingface_inference_toolkit.handler_service; \
	assert torch.__version__.startswith('2.13.0'), torch.__version__; \
	assert transformers.__version__.startswith('4.'), transformers.__version__

.PHONY: dlc-venv dlc-serve

$(DLC_STAMP): $(DLC_REQS)
	@command -v java >/dev/null || echo "warning: no java on PATH; multi-model-server needs Java 17"
	$(call locked_venv,DLC)

dlc-venv: $(DLC_STAMP)  ## .venv-dlc: the official HF DLC stack (toolkit 2.6.0 + MMS, transformers 4.x)

dlc-serve: $(DLC_STAMP)  ## serve MODEL=<dir or model.tar.gz> with the DLC stack on 127.0.0.1:PORT (8081)
	@test -n $(call shq,$(MODEL)) || { echo "error: set MODEL=<model dir or model.tar.gz>"; exit 2; }
	$(DLC_VENV)/bin/python bench/dlc_stack.py $(call shq,$(MODEL)) --port $(or $(PORT),8081)

TEST_DEPS += $(DLC_STAMP)
