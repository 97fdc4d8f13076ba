"""`gansynth-live examples`: each preset's phrase and the demo's opening as FLAC files, ours beside FluidSynth
playing the same MIDI with the preset's GM program, at the loudness printed."""
import numpy as np
import soundfile as sf

from synth.bench.examples import CHORD_AT, SECONDS
from synth.cli import main
from synth.core.timbre import Preset, save_preset
from synth.engine.loudness import integrated_lufs


def test_examples_write_each_preset_beside_fluidsynth_and_the_demo(tone_model, tmp_path, capsys):
    presets = tmp_path / "presets"
    save_preset(Preset("Tone", np.ones(8, np.float32), family="organ", extra={"gm_program": 19}), presets)
    out = tmp_path / "examples"
    main(["examples", "--model", str(tone_model), "--presets", str(presets), "--out", str(out)])
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(rows) == {"Tone", "demo"} and rows["Tone"][1] == "19"
    assert sorted(p.name for p in out.iterdir()) == ["demo.flac", "demo.fluidsynth.flac", "tone.flac",
                                                     "tone.fluidsynth.flac"]
    for name in ("tone", "tone.fluidsynth"):
        audio, rate = sf.read(out / f"{name}.flac")
        assert rate == 48000 and audio.ndim == 1 and len(audio) == SECONDS * rate
        assert np.abs(audio[:int(0.25 * rate)]).max() > 1e-3  # the first note sounds at once
        chord = audio[int((CHORD_AT + 0.2) * rate):int((CHORD_AT + 0.6) * rate)]
        assert np.abs(chord).max() > 1e-3 and abs(audio[-1]) < 1e-3  # the chord sounds; the cut is faded
        assert abs(float(rows["Tone"][2 if name == "tone" else 3]) - integrated_lufs(audio, rate)) < 0.06
    demo, rate = sf.read(out / "demo.flac")
    assert demo.ndim == 2 and demo.shape[1] == 2 and np.abs(demo).max() > 1e-3
