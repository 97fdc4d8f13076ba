"""GANSynth Live: a playable neural synthesizer."""
__version__ = "0.1.0"
