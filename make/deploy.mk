# Package, upload, deploy, invoke, delete: the SageMaker path (docs/deploy.md).
#   make package MODEL=cross-encoder/ms-marco-MiniLM-L-6-v2     (or MODEL=path/to/dir)
#   make deploy ROLE=arn:aws:iam::123456789012:role/reranker-sagemaker REGION=eu-west-1
# Each setting is a make variable of its own name (REGION=, ROLE=, INSTANCE_TYPE=, ...; see
# `.venv/bin/python -m deploy <command> --help`): the recipes run the tool with
# --make-variables, which reads them from the environment make gives its recipes, so which
# setting belongs to which command is written once, in deploy/cli/settings.py.
# Container settings: any RERANK_*=value on the command line.
# Inference components (several rerankers on one endpoint): MODE=component COMPONENT=name
#   (COMPONENT= also for status, delete and invoke); docs/deploy.md has the example.
# Batch Transform (no endpoint): make transform INPUT=s3://b/in/ OUTPUT=s3://b/out/ ROLE=...
.PHONY: package inspect upload deploy status delete invoke evaluate role-policy dlc-images
.PHONY: transform loadtest cloudformation capture-export

ARCHIVE ?= build/model.tar.gz
SAGEMAKER_CORE_WHEEL := sagemaker-core==2.27.0
DEPLOY_TOOL = $(PY) -m deploy --make-variables

# $(call flag,VARIABLE,option): "--option 'value'" when VARIABLE is set (quotes in it are safe).
flag = $(if $($(1)),--$(2) $(call shq,$($(1))))

# Each command's optional flags, gathered here so that its recipe stays one echoed line
# whichever are set (a recipe split over lines echoes a lone "\" for each empty one).
PACKAGE_FLAGS = $(strip $(call flag,ONNX,onnx) $(call flag,REVISION,revision) \
  $(if $(ALLOW_PICKLE),--allow-pickle) $(if $(NO_CHECK),--no-check))
EVALUATE_FLAGS = $(strip $(call flag,RUN,run) $(call flag,DEPTH,depth) \
  $(call flag,QRELS,split) $(call flag,MAX_QUERIES,max-queries) $(call flag,MODEL,model) \
  $(foreach c,$(COMPARE),--compare $(call shq,$(c))) $(call flag,JSON,json) \
  $(call flag,SAVE_RUNS,save-runs) $(call flag,CHART,chart))
LOADTEST_FLAGS = $(strip $(call flag,DOCUMENTS,documents) $(call flag,WORDS,words) \
  $(call flag,REQUESTS,requests) $(call flag,P99_MS,p99-ms) \
  $(call flag,INSTANCES,instances) \
  $(if $(CONCURRENCY),--concurrency $(foreach c,$(CONCURRENCY),$(call shq,$(c)))) \
  $(call flag,REPEAT,repeat) $(call flag,PRICE_PER_HOUR,price-per-hour) \
  $(call flag,JSON,json) $(call flag,CHART,chart))

package: $(STAMP)  ## model.tar.gz from MODEL=<hub id|dir|archive> (REVISION=, ONNX=fp32|int8, ALLOW_PICKLE=1, NO_CHECK=1)
	@test -n $(call shq,$(MODEL)) || { echo "error: set MODEL=<hub id or model directory>" >&2; exit 2; }
	$(PY) -m deploy package $(call shq,$(MODEL)) -o $(call shq,$(ARCHIVE)) $(PACKAGE_FLAGS)

inspect: $(STAMP)  ## list ARCHIVE's files, sha256 and prompt, extract it safely and score one pair
	$(PY) -m deploy inspect $(call shq,$(ARCHIVE)) --check

upload: $(STAMP)  ## upload ARCHIVE to s3://BUCKET/PREFIX/ (skipped when the same sha256 is there)
	$(DEPLOY_TOOL) upload

deploy: $(STAMP)  ## upload if needed, then create or update ENDPOINT (MODE, INSTANCE_TYPE, ROLE, ...)
	$(DEPLOY_TOOL) deploy

cloudformation: $(STAMP)  ## upload if needed, then write ENDPOINT as a CloudFormation template (same settings as deploy; OUT=file)
	$(DEPLOY_TOOL) cloudformation $(call flag,OUT,out)

status: $(STAMP)  ## ENDPOINT's status, model, image and autoscaling (COMPONENT=: an inference component)
	$(DEPLOY_TOOL) status

delete: $(STAMP)  ## delete ENDPOINT, its endpoint configs and models (COMPONENT=: one inference component; PURGE=1: S3 archives too)
	$(DEPLOY_TOOL) delete $(if $(PURGE),--purge)

transform: $(STAMP)  ## Batch Transform: rerank INPUT=s3://... jsonlines into OUTPUT=s3://... (ROLE, INSTANCE_TYPE, ...)
	@test -n $(call shq,$(INPUT)) -a -n $(call shq,$(OUTPUT)) || { echo "error: set INPUT=s3://bucket/in/ and OUTPUT=s3://bucket/out/" >&2; exit 2; }
	$(DEPLOY_TOOL) transform

# QUERY, DOCS and INSTRUCTION reach the shell through the environment, so any quotes in them
# are safe.
invoke: override export QUERY := $(value QUERY)
invoke: override export DOCS := $(value DOCS)
invoke: override export INSTRUCTION := $(value INSTRUCTION)
invoke: $(STAMP)  ## rerank DOCS="a|b|c" for QUERY with ENDPOINT (COMPONENT, TOP_N, INSTRUCTION for LLM rerankers; ENDPOINT_URL for a local server)
	@test -n "$$QUERY" -a -n "$$DOCS" || { echo "error: set QUERY='...' and DOCS='one|two'" >&2; exit 2; }
	@IFS='|' read -r -a docs <<< "$$DOCS"; \
	$(DEPLOY_TOOL) invoke $(call flag,TOP_N,top-n) --query "$$QUERY" --documents "$${docs[@]}" \
	  $${INSTRUCTION:+--instruction "$$INSTRUCTION"}

evaluate: override export INSTRUCTION := $(value INSTRUCTION)
evaluate: $(STAMP)  ## nDCG@10/MRR@10 of ENDPOINT on DATA=<BEIR folder> vs its first stage (MODEL=dir: a local model; RUN=, DEPTH=, QRELS=dev, COMPARE="other http://... model:dir", INSTRUCTION= for an LLM reranker)
	@test -n $(call shq,$(DATA)) || { echo "error: set DATA=<folder with corpus.jsonl, queries.jsonl, qrels/test.tsv>" >&2; exit 2; }
	$(DEPLOY_TOOL) evaluate --data $(call shq,$(DATA)) $(EVALUATE_FLAGS) $${INSTRUCTION:+--instruction "$$INSTRUCTION"}

capture-export: $(STAMP)  ## ENDPOINT's captured requests (CAPTURE=s3://...) as an evaluation set to judge, in OUT=dir
	@test -n $(call shq,$(OUT)) || { echo "error: set OUT=<folder for the evaluation set>" >&2; exit 2; }
	$(DEPLOY_TOOL) capture-export --out $(call shq,$(OUT))

loadtest: $(STAMP)  ## req/s and p50/p99 of ENDPOINT per concurrency, and the autoscaling targets that keep P99_MS (DOCUMENTS=25, WORDS=120, REQUESTS=200; REPEAT: share of repeated requests; PRICE_PER_HOUR: the cost per 1,000 requests)
	$(DEPLOY_TOOL) loadtest $(LOADTEST_FLAGS)

role-policy: $(STAMP)  ## print the SageMaker execution role's least-privilege policy (ROLE, BUCKET, REGION or IMAGE_URI)
	@$(DEPLOY_TOOL) deploy --print-role-policy

dlc-images: $(STAMP)  ## refresh deploy/sagemaker/data/huggingface_dlc.json from the pinned SageMaker SDK wheel
	rm -rf build/sdk && $(BIN)/pip download --no-deps --quiet -d build/sdk $(SAGEMAKER_CORE_WHEEL)
	$(PY) -m deploy.sagemaker.images --refresh build/sdk/sagemaker_core-*.whl
