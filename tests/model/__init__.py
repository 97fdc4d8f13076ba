"""synth.model (torch): the note set, the voice, training, export and evaluation."""
