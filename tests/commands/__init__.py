"""synth.commands: options and odd input give one line and a non-zero exit."""
