"""The low layer both sides read: the note spec and GM families, timbres and preset files, whole-note resampling.

Nothing here imports torch, onnxruntime or another synth package, so the live side (engine, runtime, window)
and the training side (synth.model) can share these facts without importing each other.
"""
