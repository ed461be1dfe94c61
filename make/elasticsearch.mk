# Elasticsearch integration: inference endpoint, search and IAM JSON for a deployed endpoint.
#   make elasticsearch ENDPOINT=name REGION=us-east-1 ACCOUNT=123456789012 \
#                      DOCUMENT_FIELD=passage_text
#   optional: COMPONENT=name (an inference component), ELASTICSEARCH_ARGS='...' for any other
#             flag of `python -m deploy elasticsearch -h`.
.PHONY: elasticsearch

ELASTICSEARCH_FLAGS = --endpoint $(call shq,$(ENDPOINT)) $(if $(REGION),--region $(call shq,$(REGION))) \
  $(if $(ACCOUNT),--account $(call shq,$(ACCOUNT))) $(if $(COMPONENT),--component $(call shq,$(COMPONENT))) \
  $(if $(DOCUMENT_FIELD),--document-field $(call shq,$(DOCUMENT_FIELD)))

elasticsearch: $(STAMP)  ## Elasticsearch JSON for ENDPOINT (REGION, ACCOUNT, DOCUMENT_FIELD) in build/elasticsearch/
	$(PY) -m deploy elasticsearch $(strip $(ELASTICSEARCH_FLAGS)) $(ELASTICSEARCH_ARGS)
