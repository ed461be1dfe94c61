# The serving image under Docker (docs/serving.md, "Docker").
#   make docker-build [VARIANT=gpu] [COMPILER=true] [BASE_IMAGE=...] [TORCH_INDEX=...]
#   make docker-run MODEL=...
#   make docker-test
# With no registry reachable the images build on reranker-base:bookworm, made from Debian's
# packages (make docker-base); this machine's pip CA bundle and torch wheel reach only the
# build stage (build/docker-extras/VARIANT, container/base/extras.sh).

IMAGE        ?= reranker-serving
VARIANT      ?= cpu
# COMPILER=true: the image with a C/C++ compiler, for RERANK_COMPILE (tagged VARIANT-compiler).
COMPILER     ?= false
IMAGE_TAG    := $(VARIANT)$(if $(filter true,$(COMPILER)),-compiler)
PUBLIC_BASE  := python:3.11-slim-bookworm
LOCAL_BASE   := reranker-base:bookworm
DOCKER_EXTRAS := build/docker-extras/$(VARIANT)
NO_DOCKER     = echo "$@: no Docker engine runs here (docker info failed): nothing to do"; exit 0

.PHONY: docker-base docker-build docker-run docker-test docker-push

docker-base:  ## reranker-base:bookworm from Debian's packages (debootstrap; kept when it exists)
	@docker info >/dev/null 2>&1 || { $(NO_DOCKER); }; \
	nice container/base/build.sh $(LOCAL_BASE)

# BASE_IMAGE: as given, else the official python image when it is here or can be pulled,
# else the local Debian base.  TORCH_INDEX: the pip index torch comes from (the Dockerfile's
# default when unset).  build/docker-image-TAG.json records size and build time.
# Needs the venv: container/base/extras.sh asks its pip for the CA bundle and find-links.
docker-build: $(STAMP)  ## build the serving image reranker-serving:VARIANT (VARIANT=cpu|gpu; COMPILER=true: VARIANT-compiler)
	@docker info >/dev/null 2>&1 || { $(NO_DOCKER); }; \
	base=$(or $(BASE_IMAGE),$$(container/base/choose.sh $(PUBLIC_BASE) $(LOCAL_BASE))) || exit $$?; \
	container/base/extras.sh $(DOCKER_EXTRAS) $(VARIANT) $(BIN)/pip >/dev/null || exit $$?; \
	start=$$(date +%s); \
	nice docker build -f container/Dockerfile.$(VARIANT) --build-arg BASE_IMAGE="$$base" \
		--build-arg COMPILER=$(COMPILER) $(if $(TORCH_INDEX),--build-arg TORCH_INDEX=$(call shq,$(TORCH_INDEX))) \
		-t $(IMAGE):$(IMAGE_TAG) . || exit $$?; \
	seconds=$$(( $$(date +%s) - start )); \
	size=$$(docker image inspect -f '{{.Size}}' $(IMAGE):$(IMAGE_TAG)); \
	printf '{"image": "%s", "base": "%s", "size_bytes": %s, "build_seconds": %s}\n' \
		$(IMAGE):$(IMAGE_TAG) "$$base" "$$size" "$$seconds" | tee build/docker-image-$(IMAGE_TAG).json

# The container settings given to make (RERANK_*, SERVE_*), as `make serve` takes them; not
# where the server listens inside: the published port maps to 8080.
DOCKER_RUN_ENV = $(foreach v,$(filter-out SERVE_PORT SERVE_HOST,$(filter RERANK_% SERVE_%,$(.VARIABLES))),\
  $(if $(filter command environment,$(firstword $(origin $(v)))),-e $(v)))

docker-run: $(STAMP)  ## run the image on 127.0.0.1:PORT (8080), MODEL mounted read-only at /opt/ml/model
	@docker info >/dev/null 2>&1 || { $(NO_DOCKER); }; \
	$(if $(filter-out $(DEMO_MODEL),$(or $(MODEL),$(DEMO_MODEL))),,$(MAKE) --no-print-directory demo-model &&) \
	dir=$(call resolve_model,$(DEMO_MODEL)); \
	unreadable=$$(find "$$dir" \( -type d ! -perm -o+rx \) -o \( ! -type d ! -perm -o+r \) -print -quit); \
	test -z "$$unreadable" || { echo "error: $$unreadable is not readable by the image's uid 1000 (chmod -R a+rX $$dir)" >&2; exit 2; }; \
	$(PY) -m serving.ports 127.0.0.1 $(call shq,$(or $(PORT),8080)) || exit 2; \
	exec docker run --rm --stop-timeout 30 -p 127.0.0.1:$(or $(PORT),8080):8080 \
		$(if $(filter gpu,$(VARIANT)),--gpus all) $(DOCKER_RUN_ENV) \
		-v "$$dir":/opt/ml/model:ro $(IMAGE):$(IMAGE_TAG) serve

# The container tier: a `make package` archive unpacked at /opt/ml/model, the HTTP suites
# and the SageMaker contract against the running image (skipped, with the reason, when no
# Docker engine runs).
docker-test: docker-build  ## the container tests against reranker-serving:VARIANT
	RERANK_TEST_IMAGE=$(IMAGE):$(IMAGE_TAG) $(PY) -m pytest -q $(PYTEST_ARGS) tests/test_container_contract.py

TEST_DEPS += docker-build

# ECR_REPO=<account>.dkr.ecr.<region>.amazonaws.com/<name> (the repository must exist);
# TAG defaults to the local tag (VARIANT, or VARIANT-compiler with COMPILER=true).  The pushed
# URI is what `make deploy IMAGE_URI=...` deploys.
docker-push: $(STAMP)  ## push reranker-serving:VARIANT to ECR_REPO (tag TAG, default the local tag) for IMAGE_URI
	@test -n $(call shq,$(ECR_REPO)) || { echo "error: set ECR_REPO=<account>.dkr.ecr.<region>.amazonaws.com/<name>" >&2; exit 2; }
	@docker info >/dev/null 2>&1 || { echo "error: no Docker engine runs here (docker info failed)" >&2; exit 2; }
	@docker image inspect $(IMAGE):$(IMAGE_TAG) >/dev/null 2>&1 || { echo "error: no image $(IMAGE):$(IMAGE_TAG): run make docker-build VARIANT=$(VARIANT) COMPILER=$(COMPILER) first" >&2; exit 2; }
	@password=$$($(PY) -m deploy --make-variables ecr-login $(call shq,$(ECR_REPO))) || exit $$?; \
	printf '%s' "$$password" | docker login --username AWS --password-stdin \
	  $(call shq,$(firstword $(subst /, ,$(ECR_REPO)))) >/dev/null
	docker tag $(IMAGE):$(IMAGE_TAG) $(call shq,$(ECR_REPO):$(or $(TAG),$(IMAGE_TAG)))
	docker push $(call shq,$(ECR_REPO):$(or $(TAG),$(IMAGE_TAG)))
	@echo "pushed: deploy it with make deploy IMAGE_URI="$(call shq,$(ECR_REPO):$(or $(TAG),$(IMAGE_TAG)))" ..."
