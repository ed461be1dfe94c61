"""The device kit: what a bare GPU machine without network needs to run ``bench.gpu_check``.

``python -m bench.device.prepare`` (``make device-kit``) fills ``build/device-kit`` here:
the wheels our serving path and the Infinity peer need that such a machine lacks, and the
tokenizers of the benchmark's model shapes.  ``bash bench/device/run.sh OUTDIR`` on the GPU
machine installs them into a temporary folder and runs the check (docs/gpu.md).
"""
