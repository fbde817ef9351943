"""ONNX export of detstream models, ONNX metadata, and export parity checks."""
