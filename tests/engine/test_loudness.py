"""Every note plays at one loudness: the bank measures each note as it stores it and levels it (GM's velocity curve
across the layers)."""
import numpy as np
import pytest

from synth.engine.bank import N_KEYS, REFERENCE_LUFS, BankRenderer
from synth.engine.loudness import momentary_peak_lufs, rise_ms
from synth.runtime.model import NoteModel
from tests.onnx_voices import Z_DIM, envelope, tone_onnx


def test_a_full_scale_997_hz_sine_reads_minus_3_lufs():
    """BS.1770's calibration point: a 0 dBFS 997 Hz sine in one channel measures -3.01 LUFS."""
    t = np.arange(96000) / 48000
    assert momentary_peak_lufs(np.sin(2 * np.pi * 997 * t), 48000) == pytest.approx(-3.01, abs=0.02)


def test_k_weighting_hears_a_bass_note_quieter_than_a_treble_note_of_the_same_rms():
    t = np.arange(48000) / 48000
    assert momentary_peak_lufs(np.sin(2 * np.pi * 30 * t), 48000) < momentary_peak_lufs(np.sin(2 * np.pi * 3000 * t),
                                                                                        48000) - 6


@pytest.mark.parametrize("layers", [[40, 80, 120], None])
def test_every_note_stores_at_one_loudness_per_layer_whatever_its_timbre_and_key(tmp_path, layers):
    """Two timbres 20 dB apart (the test model's level is the sum of z): every stored note is its rendered note
    scaled by one gain, to REFERENCE_LUFS at velocity 100, each layer 40·log10(v/100) dB from it (GM's curve)."""
    path = tone_onnx(tmp_path / "t.onnx", envelope("sustained"), layers=layers, velocity=layers is not None,
                     pitch_min=48, pitch_max=72, z_level=True)
    model = NoteModel(path, threads=1)
    renderer = BankRenderer(model, 48000)
    hold = renderer.layout.hold
    for level in (0.05, 0.5):
        z = np.zeros(Z_DIM, np.float32)
        z[0] = level
        renderer.set_timbre(z)
        renderer.render_notes(0, [(48, 30), (72, 127), (90, 100)])
        bank = renderer.lanes[0].banks[-1]
        assert len(bank.slot_of) >= 3
        for key, slot in bank.slot_of.items():
            v, pitch = renderer.layers[key // N_KEYS], key % N_KEYS
            stored = renderer.pool.data[slot][:hold]
            assert momentary_peak_lufs(stored, 48000) - 40 * np.log10(v / 100) == pytest.approx(REFERENCE_LUFS, abs=0.1)
            if pitch <= 72:  # a key the model plays itself (above, its top pitch transposed): stored as rendered
                raw = model.render(z[None], [pitch], np.array([v / 127], np.float32))[0][:48000]
                gain = np.dot(stored[:48000], raw) / np.dot(raw, raw)
                np.testing.assert_allclose(stored[:48000], raw * gain, atol=1e-5)


def test_rise_is_twice_the_time_to_half_level():
    """A tone fading in linearly over 1 s reaches half its level at 0.5 s: its rise is 1 s; one that speaks at
    once rises in no time, silence not at all."""
    rate = 48000
    t = np.arange(3 * rate) / rate
    tone = np.sin(2 * np.pi * 440 * t)
    ramp = tone * np.minimum(1.0, t)
    assert rise_ms(ramp, rate) == pytest.approx(1000, abs=20)
    assert rise_ms(np.stack([ramp, ramp], axis=1), rate) == rise_ms(ramp, rate)
    assert rise_ms(tone, rate) == 0 and rise_ms(np.zeros(rate), rate) == 0
