"""synth.core: timbres, preset files, and the JSON loaders fuzzed."""
