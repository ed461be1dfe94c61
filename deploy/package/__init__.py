"""model.tar.gz: fetch a model, check it with the engine, export ONNX, write the archive."""
