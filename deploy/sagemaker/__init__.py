"""SageMaker: upload, endpoints in every mode, Batch Transform, images, IAM, teardown."""
