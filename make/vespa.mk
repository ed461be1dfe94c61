# Vespa: an application package for BM25 retrieval + cross-encoder global-phase
# reranking, written offline (docs/vespa.md).
#   make vespa MODEL_DIR=path/to/model [OUT=build/vespa] [ONNX=auto|fp32|int8]
#              [RERANK_COUNT=100] [MAX_LENGTH=256] [QUERY_TOKENS=32] [DOCUMENT_TOKENS=n]
#              [APP_NAME=reranker] [ONNX_FILE=path/to/own.onnx [ONNX_TOLERANCE=0.05]]
# MODEL_DIR is a model directory (config.json, tokenizer.json, weights); its onnx/ model is
# shipped when present, otherwise one is exported and checked against torch first;
# ONNX_FILE ships your own file instead, after the same kind of check.
# MODEL=<dir|model.tar.gz|hub id> works too, resolved like `make serve` does.
.PHONY: vespa

vespa_flag = $(if $($(1)),--$(2) $(call shq,$($(1))))

vespa: $(STAMP)  ## Vespa application package from MODEL_DIR (or MODEL) into OUT (build/vespa)
	@dir=$(call shq,$(MODEL_DIR)); \
	if [ -z "$$dir" ]; then \
	  test -n $(call shq,$(MODEL)) || { echo "error: set MODEL_DIR=<model directory>" >&2; exit 2; }; \
	  dir=$$($(PY) -m deploy.package.local_model $(call shq,$(MODEL))) || exit $$?; \
	fi; \
	set -x; $(PY) -m deploy vespa --model-dir "$$dir" --out $(call shq,$(or $(OUT),build/vespa)) \
	  $(call vespa_flag,ONNX,onnx) $(call vespa_flag,RERANK_COUNT,rerank-count) \
	  $(call vespa_flag,MAX_LENGTH,max-length) $(call vespa_flag,QUERY_TOKENS,query-tokens) \
	  $(call vespa_flag,DOCUMENT_TOKENS,document-tokens) $(call vespa_flag,APP_NAME,app-name) \
	  $(call vespa_flag,ONNX_FILE,onnx-file) $(call vespa_flag,ONNX_TOLERANCE,onnx-tolerance)
