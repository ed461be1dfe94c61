# Package, upload, deploy, invoke, delete: the SageMaker path (docs/deploy.md).
#   make package MODEL=cross-encoder/ms-marco-MiniLM-L-6-v2     (or MODEL=path/to/dir)
#   make deploy ROLE=arn:aws:iam::123456789012:role/reranker-sagemaker REGION=eu-west-1
# Every variable below is optional (reranker.toml and DEPLOY_* variables work too); each is
# passed to `python -m deploy` as the flag of the same name, only when set.
#   ENDPOINT REGION PROFILE ROLE BUCKET PREFIX ARCHIVE MODEL_DATA
#   MODE=realtime|serverless|async|component INSTANCE_TYPE INSTANCE_COUNT MEMORY_MB MAX_CONCURRENCY
#   ASYNC_OUTPUT ASYNC_FAILURE SNS_SUCCESS SNS_ERROR IMAGE_URI (our own image instead of the
#   HF DLC) TRANSFORMERS_VERSION PYTORCH_VERSION PY_VERSION MIN_CAPACITY MAX_CAPACITY
#   TARGET_INVOCATIONS WAIT_TIMEOUT METRICS_FREQUENCY; container settings: any RERANK_*=value.
# Inference components (MODE=component; several rerankers on one endpoint): COMPONENT (its
#   name; also for status, delete and invoke) COPIES CPU_CORES ACCELERATORS
#   COMPONENT_MEMORY_MB MIN_INSTANCES MAX_INSTANCES (a new endpoint's; 0..N scales to zero)
#   MIN_COPIES MAX_COPIES (autoscaling; MIN_COPIES=0 scales to zero) SCALE_METRIC
#   (concurrency|invocations) TARGET_PER_COPY
# Batch Transform (no endpoint): make transform INPUT=s3://b/in/ OUTPUT=s3://b/out/ ROLE=...
#   [INSTANCE_TYPE INSTANCE_COUNT MAX_PAYLOAD_MB SPLIT=Line|None MAX_CONCURRENT_TRANSFORMS]
.PHONY: package inspect upload deploy status delete invoke role-policy dlc-images transform

ARCHIVE ?= build/model.tar.gz
SAGEMAKER_CORE_WHEEL := sagemaker-core==2.27.0

# $(call flag,VARIABLE,option): "--option 'value'" when VARIABLE is set.
flag = $(if $($(1)),--$(2) '$($(1))')
AWS_FLAGS = $(call flag,ENDPOINT,endpoint) $(call flag,REGION,region) \
  $(call flag,PROFILE,profile)
TARGET_FLAGS = $(AWS_FLAGS) $(call flag,COMPONENT,component)
COMPONENT_FLAGS = $(call flag,COMPONENT,component) $(call flag,COPIES,copies) \
  $(call flag,CPU_CORES,cpu-cores) $(call flag,ACCELERATORS,accelerators) \
  $(call flag,COMPONENT_MEMORY_MB,component-memory-mb) \
  $(call flag,MIN_INSTANCES,min-instances) $(call flag,MAX_INSTANCES,max-instances) \
  $(call flag,MIN_COPIES,min-copies) $(call flag,MAX_COPIES,max-copies) \
  $(call flag,SCALE_METRIC,scale-metric) $(call flag,TARGET_PER_COPY,target-per-copy)
STORE_FLAGS = $(call flag,BUCKET,bucket) $(call flag,PREFIX,prefix) --archive '$(ARCHIVE)'
DEPLOY_FLAGS = $(AWS_FLAGS) $(STORE_FLAGS) $(call flag,ROLE,role) \
  $(call flag,MODEL_DATA,model-data) $(call flag,MODE,mode) \
  $(call flag,INSTANCE_TYPE,instance-type) $(call flag,INSTANCE_COUNT,instance-count) \
  $(call flag,MEMORY_MB,memory-mb) $(call flag,MAX_CONCURRENCY,max-concurrency) \
  $(call flag,ASYNC_OUTPUT,async-output) $(call flag,ASYNC_FAILURE,async-failure) \
  $(call flag,SNS_SUCCESS,sns-success) $(call flag,SNS_ERROR,sns-error) \
  $(call flag,IMAGE_URI,image) $(call flag,TRANSFORMERS_VERSION,transformers-version) \
  $(call flag,PYTORCH_VERSION,pytorch-version) $(call flag,PY_VERSION,py-version) \
  $(call flag,MIN_CAPACITY,min-capacity) $(call flag,MAX_CAPACITY,max-capacity) \
  $(call flag,TARGET_INVOCATIONS,target-invocations) $(call flag,WAIT_TIMEOUT,wait-timeout) \
  $(call flag,METRICS_FREQUENCY,metrics-frequency) $(COMPONENT_FLAGS)

TRANSFORM_FLAGS = $(AWS_FLAGS) $(STORE_FLAGS) $(call flag,ROLE,role) \
  $(call flag,MODEL_DATA,model-data) $(call flag,INSTANCE_TYPE,instance-type) \
  $(call flag,INSTANCE_COUNT,instance-count) $(call flag,INPUT,transform-input) \
  $(call flag,OUTPUT,transform-output) $(call flag,MAX_PAYLOAD_MB,max-payload-mb) \
  $(call flag,SPLIT,split-type) $(call flag,MAX_CONCURRENT_TRANSFORMS,max-concurrent-transforms) \
  $(call flag,IMAGE_URI,image) $(call flag,TRANSFORMERS_VERSION,transformers-version) \
  $(call flag,PYTORCH_VERSION,pytorch-version) $(call flag,PY_VERSION,py-version) \
  $(call flag,WAIT_TIMEOUT,wait-timeout)

package: $(STAMP)  ## model.tar.gz from MODEL=<hub id|dir|archive> (ONNX=fp32|int8, ALLOW_PICKLE=1)
	@test -n "$(MODEL)" || { echo "error: set MODEL=<hub id or model directory>" >&2; exit 2; }
	$(PY) -m deploy package '$(MODEL)' -o '$(ARCHIVE)' $(call flag,ONNX,onnx) \
	  $(if $(ALLOW_PICKLE),--allow-pickle)

inspect: $(STAMP)  ## list ARCHIVE's files and sha256, extract it safely and score one pair
	$(PY) -m deploy inspect '$(ARCHIVE)' --check

upload: $(STAMP)  ## upload ARCHIVE to s3://BUCKET/PREFIX/ (skipped when the same sha256 is there)
	$(PY) -m deploy upload $(strip $(AWS_FLAGS) $(STORE_FLAGS))

deploy: $(STAMP)  ## upload if needed, then create or update ENDPOINT (MODE, INSTANCE_TYPE, ROLE, ...)
	$(PY) -m deploy deploy $(strip $(DEPLOY_FLAGS))

status: $(STAMP)  ## ENDPOINT's status, model, image and autoscaling (its inference components; COMPONENT=one of them)
	$(PY) -m deploy status $(strip $(TARGET_FLAGS))

delete: $(STAMP)  ## delete ENDPOINT, its endpoint configs and models (COMPONENT=one inference component; PURGE=1: S3 archives too)
	$(PY) -m deploy delete $(strip $(TARGET_FLAGS)) $(if $(PURGE),--purge)

transform: $(STAMP)  ## Batch Transform: rerank INPUT=s3://... jsonlines into OUTPUT=s3://... (ROLE, INSTANCE_TYPE, ...)
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "error: set INPUT=s3://bucket/in/ and OUTPUT=s3://bucket/out/" >&2; exit 2; }
	$(PY) -m deploy transform $(strip $(TRANSFORM_FLAGS))

# QUERY and DOCS reach the shell through the environment, so any quotes in them are safe.
invoke: export QUERY := $(QUERY)
invoke: export DOCS := $(DOCS)
invoke: $(STAMP)  ## rerank DOCS="a|b|c" for QUERY with ENDPOINT (COMPONENT, TOP_N; ENDPOINT_URL for a local server)
	@test -n "$$QUERY" -a -n "$$DOCS" || { echo "error: set QUERY='...' and DOCS='one|two'" >&2; exit 2; }
	@IFS='|' read -r -a docs <<< "$$DOCS"; \
	$(PY) -m deploy invoke $(strip $(TARGET_FLAGS)) $(call flag,ENDPOINT_URL,endpoint-url) \
	  $(call flag,TOP_N,top-n) --query "$$QUERY" --documents "$${docs[@]}"

role-policy: $(STAMP)  ## print the SageMaker execution role's least-privilege policy (ROLE, BUCKET)
	@$(PY) -m deploy deploy --print-role-policy $(strip $(DEPLOY_FLAGS))

dlc-images: $(STAMP)  ## refresh deploy/sagemaker/data/huggingface_dlc.json from the pinned SageMaker SDK wheel
	rm -rf build/sdk && $(BIN)/pip download --no-deps --quiet -d build/sdk $(SAGEMAKER_CORE_WHEEL)
	$(PY) -m deploy.sagemaker.images --refresh build/sdk/sagemaker_core-*.whl
