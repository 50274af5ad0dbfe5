"""Built-in build stages: align preprocessing, export to ONNX, quantize, optimize,
validate. Each is a plugin implementing one stage hook."""
