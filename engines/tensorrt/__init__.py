"""TensorRT FP16 engines: building from ONNX (strongly typed) and the engine cache."""
