# The Hugging Face PyTorch inference DLC's entry point, as published in
# aws/deep-learning-containers (huggingface/build_artifacts/inference/mms-entrypoint.py,
# installed there as /usr/local/bin/dockerd-entrypoint.py; Apache License 2.0,
# Copyright 2019-2020 Amazon.com, Inc. or its affiliates).  Kept as it is: `serve` starts
# the inference toolkit (which starts multi-model-server); anything else is run as a command.
from __future__ import absolute_import

import shlex
import subprocess
import sys


if sys.argv[1] == "serve":
    from sagemaker_huggingface_inference_toolkit import serving

    serving.main()
else:
    subprocess.check_call(shlex.split(" ".join(sys.argv[1:])))

# prevent docker exit
subprocess.call(["tail", "-f", "/dev/null"])
