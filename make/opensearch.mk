# OpenSearch integration: connector, model and search-pipeline JSON for a deployed endpoint.
#   make opensearch ENDPOINT=name DOCUMENT_FIELD=passage_text REGION=us-east-1 \
#                   ROLE_ARN=arn:aws:iam::...:role/...
#   DOCUMENT_FIELD is required (OpenSearch's rerank-by-field tutorial: facts, its SageMaker
#   reranker tutorial: passage_text).
#   optional: FLAVOUR=self-managed ACCOUNT=123456789012, COMPONENT=name (an inference
#             component), INSTRUCTION="..." (an LLM reranker's
#             task, written into every request body; through the environment, so quotes are safe),
#             APPLY=1 (with OPENSEARCH_URL) PATTERN=cohere|tei|ml-inference,
#             OPENSEARCH_ARGS='...' for any other flag of `python -m deploy opensearch -h`.
.PHONY: opensearch

OPENSEARCH_FLAGS = --endpoint $(call shq,$(ENDPOINT)) $(if $(REGION),--region $(call shq,$(REGION))) \
  $(if $(ROLE_ARN),--role-arn $(call shq,$(ROLE_ARN))) $(if $(ACCOUNT),--account $(call shq,$(ACCOUNT))) \
  $(if $(FLAVOUR),--flavour $(call shq,$(FLAVOUR))) $(if $(COMPONENT),--component $(call shq,$(COMPONENT))) \
  $(if $(DOCUMENT_FIELD),--document-field $(call shq,$(DOCUMENT_FIELD))) \
  $(if $(APPLY),--apply $(if $(PATTERN),--pattern $(call shq,$(PATTERN))))

opensearch: override export INSTRUCTION := $(value INSTRUCTION)
opensearch: $(STAMP)  ## OpenSearch JSON for ENDPOINT, DOCUMENT_FIELD (REGION, ROLE_ARN, INSTRUCTION) in build/opensearch/; APPLY=1 sends it
	@test -n $(call shq,$(DOCUMENT_FIELD)) || { echo "error: set DOCUMENT_FIELD=<the _source field holding the text> (OpenSearch's rerank-by-field tutorial: facts, its SageMaker reranker tutorial: passage_text)" >&2; exit 2; }
	$(PY) -m deploy opensearch $(strip $(OPENSEARCH_FLAGS)) $(OPENSEARCH_ARGS) \
	  $${INSTRUCTION:+--instruction "$$INSTRUCTION"}
