"""synth.engine: bank, voices, effects, offline render, the sound process, and the live rig end to end on JACK."""
