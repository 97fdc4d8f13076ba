"""synth.runtime: the ONNX contract and the loader's refusals."""
