# Serving: our HTTP server on the host (`make serve`) and in its image (docker-*).
# container/local_model.py turns MODEL (directory, model.tar.gz or hub id) into a
# directory; docs/serving.md has the whole story.

SERVE_MODEL_DEFAULT := cross-encoder/ms-marco-MiniLM-L-6-v2
DEMO_MODEL  := build/demo-minilm
IMAGE       ?= reranker-serving
VARIANT     ?= cpu
TEST_PORT   ?= 8089
SERVE_ENV   := PYTHONPATH=code:container
NO_DOCKER    = echo "$@: no Docker engine runs here (docker info failed): nothing to do"; exit 0
# The model directory for MODEL (default: the MiniLM reranker), or exit with the error.
resolve_model = $$($(PY) container/local_model.py "$(or $(MODEL),$(1))") || exit $$?

.PHONY: serve demo-model docker-build docker-run docker-test

serve: $(STAMP)  ## serve MODEL=<dir|model.tar.gz|hub id> on 127.0.0.1:PORT (8080) until Ctrl-C
	@dir=$(call resolve_model,$(SERVE_MODEL_DEFAULT)); \
	echo "serving $$dir on http://127.0.0.1:$(or $(PORT),8080) (Ctrl-C stops)"; \
	$(SERVE_ENV) exec $(PY) -m serving --model-dir "$$dir" --host 127.0.0.1 --port $(or $(PORT),8080)

$(DEMO_MODEL)/config.json: tests/tiny_models.py | $(STAMP)
	$(PY) -c "import sys; sys.path.insert(0, 'tests'); from pathlib import Path; \
	import tiny_models; tiny_models.minilm_cross_encoder(Path('$(DEMO_MODEL)'))"

demo-model: $(DEMO_MODEL)/config.json  ## build/demo-minilm: MiniLM-L6 cross-encoder shape, offline (scores meaningless)

docker-build:  ## build the serving image reranker-serving:VARIANT (VARIANT=cpu|gpu)
	@docker info >/dev/null 2>&1 || { $(NO_DOCKER); }; \
	docker build -f container/Dockerfile.$(VARIANT) -t $(IMAGE):$(VARIANT) .

docker-run: $(STAMP)  ## run the image on 127.0.0.1:PORT (8080), MODEL mounted read-only at /opt/ml/model
	@docker info >/dev/null 2>&1 || { $(NO_DOCKER); }; \
	dir=$(call resolve_model,$(DEMO_MODEL)); \
	exec docker run --rm -p 127.0.0.1:$(or $(PORT),8080):8080 \
		$(if $(filter gpu,$(VARIANT)),--gpus all) \
		-v "$$dir":/opt/ml/model:ro $(IMAGE):$(VARIANT) serve

docker-test: $(STAMP)  ## the HTTP suite against the image (MODEL default build/demo-minilm)
	@docker info >/dev/null 2>&1 || { $(NO_DOCKER); }; \
	$(if $(MODEL),,$(MAKE) --no-print-directory demo-model &&) \
	dir=$(call resolve_model,$(DEMO_MODEL)); \
	cid=$$(docker run -d --rm -p 127.0.0.1:$(TEST_PORT):8080 \
		$$($(PY) tests/serverutil.py docker-env) \
		-v "$$dir":/opt/ml/model:ro $(IMAGE):$(VARIANT) serve) || exit $$?; \
	trap 'docker stop $$cid >/dev/null' EXIT; \
	$(PY) tests/serverutil.py wait http://127.0.0.1:$(TEST_PORT) 300 || { docker logs $$cid; exit 1; }; \
	RERANK_TEST_URL=http://127.0.0.1:$(TEST_PORT) RERANK_TEST_MODEL_DIR="$$dir" \
		$(PY) -m pytest -q tests/test_server_api.py tests/test_server_errors.py \
		tests/test_server_load.py
