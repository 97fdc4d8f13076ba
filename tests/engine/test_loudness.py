"""Every timbre plays at one loudness: the bank measures each timbre's reference note and scales the timbre by it."""
import numpy as np
import pytest

from synth.engine.bank import N_KEYS, REFERENCE_LUFS, BankRenderer
from synth.engine.loudness import momentary_peak_lufs
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
def test_timbres_of_different_level_store_at_one_loudness_and_keep_their_key_balance(tmp_path, layers):
    """Two timbres 20 dB apart (the test model's level is the sum of z) store their reference note at the same
    loudness; every other note of a timbre is scaled by the same gain, so keys and layers keep their balance."""
    path = tone_onnx(tmp_path / "t.onnx", envelope("sustained"), layers=layers, velocity=layers is not None,
                     pitch_min=48, pitch_max=72, z_level=True)
    model = NoteModel(path, threads=1)
    renderer = BankRenderer(model, 48000)
    layer_v = renderer.layers[renderer.reference_key // N_KEYS]
    for level in (0.05, 0.5):
        z = np.zeros(Z_DIM, np.float32)
        z[0] = level
        renderer.set_timbre(z)
        renderer.render_notes(0, [(72, 30), (72, 127)])
        bank = renderer.lanes[0].banks[-1]
        ref = renderer.pool.data[bank.slot_of[renderer.reference_key]]
        assert momentary_peak_lufs(ref, 48000) + 40 * np.log10(100 / layer_v) == pytest.approx(REFERENCE_LUFS, abs=0.1)
        for key, slot in bank.slot_of.items():
            v = renderer.layers[key // N_KEYS]
            raw = model.render(z[None], [key % N_KEYS], np.array([v / 127], np.float32))[0][:48000]
            np.testing.assert_allclose(renderer.pool.data[slot][:48000], raw * bank.gain, atol=1e-5)
        assert 20 * np.log10(bank.gain) == pytest.approx(REFERENCE_LUFS - momentary_peak_lufs(
            model.render(z[None], [60], np.array([layer_v / 127], np.float32))[0], 48000)
            - 40 * np.log10(100 / layer_v), abs=0.1)
