# The DLC-equivalent image (container/dlc/, docs/dlc.md): the HF PyTorch inference DLC's
# serving stack (toolkit + multi-model-server + Java) on the same base as our image.
#   make dlc-image [BASE_IMAGE=...]     make dlc-image-run MODEL=model.tar.gz [PORT=8080]
# Its build context is assembled in build/dlc-context: the image needs only container/dlc/,
# the stack's lock (tests/dlc/requirements.txt) and container/base/venv.sh, plus this
# machine's pip CA bundle and torch wheel (container/base/extras.sh) for the build stage.

DLC_IMAGE   ?= reranker-dlc:cpu
DLC_CONTEXT := build/dlc-context

.PHONY: dlc-image dlc-image-run

dlc-image:  ## build the DLC-equivalent image reranker-dlc:cpu (toolkit + MMS + Java 17)
	@docker info >/dev/null 2>&1 || { $(NO_DOCKER); }; \
	base=$(or $(BASE_IMAGE),$$(container/base/choose.sh $(PUBLIC_BASE) $(LOCAL_BASE))) || exit $$?; \
	rm -rf $(DLC_CONTEXT) && mkdir -p $(DLC_CONTEXT) && \
	cp container/dlc/Dockerfile container/dlc/dockerd-entrypoint.py \
		container/dlc/config.properties container/base/venv.sh $(DLC_CONTEXT)/ && \
	cp $(DLC_REQS) $(DLC_CONTEXT)/requirements.txt && \
	container/base/extras.sh $(DLC_CONTEXT)/docker-extras cpu $(BIN)/pip >/dev/null || exit $$?; \
	start=$$(date +%s); \
	nice docker build --build-arg BASE_IMAGE="$$base" -t $(DLC_IMAGE) $(DLC_CONTEXT) || exit $$?; \
	seconds=$$(( $$(date +%s) - start )); \
	size=$$(docker image inspect -f '{{.Size}}' $(DLC_IMAGE)); \
	printf '{"image": "%s", "base": "%s", "size_bytes": %s, "build_seconds": %s}\n' \
		$(DLC_IMAGE) "$$base" "$$size" "$$seconds" | tee build/docker-image-dlc.json

# As SageMaker runs it: the archive unpacked at /opt/ml/model, `serve`, port 8080 (on
# 127.0.0.1 here).  The DLC's entry point never exits by itself: Ctrl-C removes the
# container by id.
dlc-image-run:  ## run MODEL=<model.tar.gz> on the DLC-equivalent image at 127.0.0.1:PORT (8080)
	@test -n $(call shq,$(MODEL)) || { echo "error: set MODEL=<model.tar.gz>" >&2; exit 2; }
	@test -f $(call shq,$(MODEL)) || { echo "error: "$(call shq,$(MODEL))" is not a file" >&2; exit 2; }
	@dir=$$(mktemp -d) && tar -xzf $(call shq,$(MODEL)) -C "$$dir" && chmod -R a+rX "$$dir" && \
	cid=$$(docker run -d -p 127.0.0.1:$(or $(PORT),8080):8080 -v "$$dir":/opt/ml/model:ro \
		-e SAGEMAKER_PROGRAM=inference.py $(DLC_IMAGE) serve) && \
	trap 'docker rm -f $$cid >/dev/null; rm -rf "$$dir"' EXIT && \
	echo "serving "$(call shq,$(MODEL))" at http://127.0.0.1:$(or $(PORT),8080)/invocations; Ctrl-C stops it" && \
	docker logs -f $$cid

TEST_DEPS += dlc-image
