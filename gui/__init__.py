"""The GANSynth Live window (PyQt6); it drives `synth` through gui.instrument and never the other way round."""
