"""The live engine: latent maths, note bank, voices, audio output, MIDI input and offline rendering."""
