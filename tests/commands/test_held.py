"""`gansynth-live held`: a preset's long held note beside FluidSynth's, with the loop measure that can fail."""
import numpy as np

from synth.cli import main
from synth.core.timbre import Preset, save_preset
from synth.model.sound_metrics import loop_periodicity

RATE = 48000


def _held(level_db: np.ndarray, seconds: float = 8.0) -> np.ndarray:
    """A 440 Hz tone whose level (dB) follows `level_db`, sampled every 10 ms over the note."""
    t = np.arange(int(seconds * RATE)) / RATE
    level = np.interp(t, np.arange(len(level_db)) * 0.01, level_db)
    return 0.3 * 10 ** (level / 20) * np.sin(2 * np.pi * 440 * t)


def test_the_loop_measure_sees_a_level_pattern_that_repeats_every_second_and_not_a_steady_or_decaying_note():
    frames = np.arange(800)
    swell = -6.0 * (frames % 100) / 100  # a 6 dB sawtooth, once a second: a loop's seam
    assert loop_periodicity(_held(swell), RATE) > 0.8
    assert loop_periodicity(_held(np.zeros(800)), RATE) < 0.3
    assert loop_periodicity(_held(-5.0 * frames / 100), RATE) < 0.3  # a steady decay is no loop
    assert loop_periodicity(_held(swell / 100), RATE) == 0.0  # a 0.06 dB seam repeats, but nobody hears it
    settling = -np.minimum(frames, 150) / 150  # 1 dB louder for the first 1.5 s, then steady: no period
    assert loop_periodicity(_held(settling), RATE) == 0.0
    assert loop_periodicity(_held(settling + swell / 3), RATE) > 0.5  # the same with a 2 dB seam each second


def test_the_loop_measure_sees_a_loop_whose_length_is_no_whole_number_of_its_frames():
    """One 1.05 s stretch of a level wandering without a period, repeated: the bank's loop. In 100 ms steps the
    lag fell between 1.0 and 1.1 s, and such a loop scored 0.3-0.9 by what the stretch held (0.39 for seed 0
    here); each seed scores as a loop, and the same wandering unlooped does not."""
    for seed in range(4):
        wander = np.convolve(np.random.default_rng(seed).standard_normal(900), np.ones(8) / 8, mode="same")
        wander *= 2.0 / wander.std()  # 2 dB RMS, moving over ~80 ms
        looped = np.concatenate([wander[:180]] + [wander[180:285]] * 7)[:800]
        assert loop_periodicity(_held(looped), RATE) > 0.6, seed  # (the lag overlaps 85 % of the hold)
        assert loop_periodicity(_held(wander[:800]), RATE) < 0.3, seed


def test_held_prints_ours_beside_fluidsynth_for_each_preset(tone_model, tmp_path, capsys):
    save_preset(Preset("Tone", np.ones(8, np.float32), family="organ", extra={"gm_program": 19}), tmp_path)
    main(["held", "--model", str(tone_model), "--presets", str(tmp_path), "--seconds", "6"])
    out = capsys.readouterr().out.splitlines()
    row = next(line for line in out if line.startswith("Tone"))
    program, ours, theirs, ours_fall, theirs_fall = row.split()[1:6]
    assert program == "19"  # the GM program the preset was encoded from
    assert float(ours) == 0.0  # the tone model's note is steady: its loop leaves no pattern you could hear
    assert abs(float(ours_fall)) < 1.0 and np.isfinite(float(theirs_fall)) and -1 <= float(theirs) <= 1
    assert out[-1] == "presets whose held note shows a loop the soundfont's lacks: 0/1"
