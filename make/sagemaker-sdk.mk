# The SageMaker Python SDK (sagemaker<3) in a venv of its own, for the tests that drive our
# server and images as users' notebooks do (Predictor, local mode).  It cannot live beside
# our pins; tests/sdk/requirements.txt is a complete lock, installed with --no-deps.

SDK_VENV  ?= .venv-sagemaker
export SDK_VENV  # tests/sdkutil.py reads it
SDK_STAMP := $(SDK_VENV)/.installed
SDK_REQS  := tests/sdk/requirements.txt
SDK_SMOKE := import sagemaker, sagemaker.local, sagemaker.huggingface; \
	from sagemaker.serializers import JSONSerializer; \
	assert sagemaker.__version__.startswith('2.'), sagemaker.__version__

.PHONY: sagemaker-venv

$(SDK_STAMP): $(SDK_REQS)
	$(call locked_venv,SDK)

sagemaker-venv: $(SDK_STAMP)  ## .venv-sagemaker: the SageMaker Python SDK 2.x (Predictor, local mode)

TEST_DEPS += $(SDK_STAMP)
