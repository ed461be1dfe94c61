# Serving: our HTTP server on the host (`make serve`); its image is make/docker.mk.
# deploy/package/local_model.py turns MODEL (directory, model.tar.gz or hub id) into a
# directory; docs/serving.md has the whole story.

SERVE_MODEL_DEFAULT := cross-encoder/ms-marco-MiniLM-L-6-v2
DEMO_MODEL  := build/demo-minilm
# The model directory for MODEL (default: the MiniLM reranker), or exit with the error.
resolve_model = $$($(PY) -m deploy.package.local_model "$(or $(MODEL),$(1))") || exit $$?

.PHONY: serve demo-model

serve: $(SERVE_STAMP)  ## serve MODEL=<dir|model.tar.gz|hub id> on 127.0.0.1:PORT (8080) until Ctrl-C
	@dir=$(call resolve_model,$(SERVE_MODEL_DEFAULT)); \
	echo "serving $$dir on http://127.0.0.1:$(or $(PORT),8080) (Ctrl-C stops)"; \
	exec $(PY) -m serving --model-dir "$$dir" --host 127.0.0.1 --port $(or $(PORT),8080)

$(DEMO_MODEL)/config.json: demo_models/encoders.py | $(SERVE_STAMP)
	@echo "building $(DEMO_MODEL): ms-marco-MiniLM-L-6-v2's architecture with a pretrained body and"
	@echo "an untrained head, offline; it serves like the real model but its scores mean nothing"
	@$(PY) -c "from pathlib import Path; from demo_models.encoders import minilm_cross_encoder; \
	minilm_cross_encoder(Path('$(DEMO_MODEL)'))"
	@chmod -R a+rX $(DEMO_MODEL)  # the image's uid 1000 reads it (make docker-run)

demo-model: $(DEMO_MODEL)/config.json  ## build/demo-minilm: MiniLM-L6 cross-encoder shape, offline (scores meaningless)
