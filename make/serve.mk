# Serving: our HTTP server on the host (`make serve`); its image is make/docker.mk.
# deploy/package/local_model.py turns MODEL (directory, model.tar.gz or hub id) into a
# directory; docs/serving.md has the whole story.

SERVE_MODEL_DEFAULT := cross-encoder/ms-marco-MiniLM-L-6-v2
DEMO_MODEL  := build/demo-minilm
# The model directory for MODEL (default: the MiniLM reranker), or exit with the error.
resolve_model = $$($(PY) -m deploy.package.local_model $(call shq,$(or $(MODEL),$(1)))) || exit $$?
# A directory or archive needs only serving's packages; a hub id is packaged first by the
# deploy tools (boto3 and the rest), so it needs the whole install.
serve_install = $(if $(wildcard $(or $(MODEL),$(SERVE_MODEL_DEFAULT))),$(SERVE_STAMP),$(STAMP))

.PHONY: serve demo-model demo-llm

serve: $(serve_install)  ## serve MODEL=<dir|model.tar.gz|hub id> on 127.0.0.1:PORT (8080) until Ctrl-C
	@dir=$(call resolve_model,$(SERVE_MODEL_DEFAULT)); \
	asked=$(call shq,$(or $(MODEL),$(SERVE_MODEL_DEFAULT))); \
	where=$$([ "$$dir" -ef "$$asked" ] || echo " (files at $$dir)"); \
	echo "serving $$asked$$where on http://127.0.0.1:$(or $(PORT),8080) (Ctrl-C stops)"; \
	exec $(PY) -m serving --model-dir "$$dir" --host 127.0.0.1 --port $(or $(PORT),8080)

$(DEMO_MODEL)/config.json: demo_models/encoders.py | $(SERVE_STAMP)
	@echo "building $(DEMO_MODEL): ms-marco-MiniLM-L-6-v2's architecture with a pretrained body and"
	@echo "an untrained head, offline; it serves like the real model but its scores mean nothing"
	@HF_HUB_DISABLE_PROGRESS_BARS=1 $(PY) -c "from pathlib import Path; from demo_models.encoders import minilm_cross_encoder; \
	minilm_cross_encoder(Path('$(DEMO_MODEL)'))"
	@chmod -R a+rX $(DEMO_MODEL)  # the image's uid 1000 reads it (make docker-run)

demo-model: $(DEMO_MODEL)/config.json  ## build/demo-minilm: MiniLM-L6 cross-encoder shape, offline (scores meaningless)

DEMO_LLM := build/demo-qwen3-reranker

$(DEMO_LLM)/config.json: demo_models/llm.py demo_models/qwen_tokenizer.py | $(SERVE_STAMP)
	@echo "building $(DEMO_LLM): Qwen3-Reranker's architecture, prompt and vocabulary with two"
	@echo "tiny random layers, offline; it serves like the real model but its scores mean nothing"
	@HF_HUB_DISABLE_PROGRESS_BARS=1 $(PY) -c "from pathlib import Path; from demo_models.llm import qwen3_reranker; \
	qwen3_reranker(Path('$(DEMO_LLM)'))"
	@chmod -R a+rX $(DEMO_LLM)  # the image's uid 1000 reads it (make docker-run)

demo-llm: $(DEMO_LLM)/config.json  ## build/demo-qwen3-reranker: an LLM reranker (Qwen3-Reranker's prompt and vocabulary, tiny random layers), offline
