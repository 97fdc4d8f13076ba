"""`gansynth-live bench`'s measurements and the private JACK server they (and the tests) run on."""
