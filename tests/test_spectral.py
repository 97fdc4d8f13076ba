"""Round trip of the spectral representation: audio → features → audio, measured as log-spectral distance."""
import numpy as np
import pytest
import torch

from synth.model import spectral as S


def harmonic_note(midi: int) -> torch.Tensor:
    t = torch.arange(S.NOTE_SAMPLES, dtype=torch.float64) / S.SAMPLE_RATE
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    x = sum(0.3 / k * torch.sin(2 * np.pi * f0 * k * t) for k in range(1, 12) if f0 * k < 7900)
    return (x * torch.exp(-1.5 * t))[None].float()


@pytest.mark.parametrize("midi", [24, 48, 60, 84])
def test_linear_if_round_trip_is_near_lossless(midi):
    m = S.IFMel(mel=False)
    x = harmonic_note(midi)
    y = m.inverse(m(x))
    assert S.log_spectral_distance(x, y) < 0.5
    assert float(((x - y) ** 2).mean() / (x**2).mean()) < 5e-3  # the dropped DC bin costs a little at the lowest notes


@pytest.mark.parametrize("midi,max_db", [(24, 0.5), (48, 0.5), (60, 2.0), (84, 10.0)])
def test_mel_round_trip_quality(midi, max_db):
    """IF-Mel keeps low notes intact; the square mel warp loses rank at high frequency (measured ≈ 8 dB at C6)."""
    m = S.IFMel(mel=True)
    x = harmonic_note(midi)
    feats = m(x)
    assert feats.shape == (1, 2, S.N_FRAMES, S.N_BINS)
    assert float(feats[:, 1].abs().max()) <= 1.0 + 1e-5
    assert S.log_spectral_distance(x, m.inverse(feats)) < max_db


def test_mel_matrix_columns_average_linear_bins():
    w = S.mel_matrix()
    assert w.shape == (S.N_BINS, S.N_BINS)
    np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-9)
    assert (w >= 0).all()


@pytest.mark.parametrize("mel", [True, False])
@pytest.mark.parametrize("midi", [36, 40, 43, 47, 50])
def test_a_time_averaged_spectrum_decodes_to_the_same_pitch(midi, mel):
    """A constant spectrum and IF over time (what a generator's per-pitch baseline gives) must be a tone at the
    note's pitch. Measuring phase without the Hann window's bin-to-bin alternation put such tones an octave or
    more low for MIDI 34-53 (partials snapped to the 31.25 Hz frame-rate grid)."""
    from synth.model.evaluate import cents_error

    m = S.IFMel(mel=mel)
    t = torch.arange(S.NOTE_SAMPLES, dtype=torch.float64) / S.SAMPLE_RATE
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    steady = sum(0.3 / k * torch.sin(2 * np.pi * f0 * k * t + k) for k in range(1, 12))[None].float()
    feats = m(steady)[:, :, 4:80].mean(dim=2, keepdim=True).expand(-1, -1, S.N_FRAMES, -1)
    assert cents_error(m.inverse(feats).numpy(), np.array([midi]))[0] < 50


@pytest.mark.parametrize("midi", [24, 36, 48, 60, 72, 84])
def test_harmonic_phase_remakes_a_harmonic_note_from_its_magnitudes_alone(midi):
    """A fixed-IF generator's notes take this phase: from a harmonic note's magnitudes it must give back the same
    spectrum (measured 0.5-2.0 dB against about 0.05 dB with the note's own phase) at the same pitch."""
    from synth.model.evaluate import cents_error

    m = S.IFMel(mel=False)
    x = harmonic_note(midi)
    phase = m.harmonic_phase(torch.tensor([midi]))
    assert phase.shape == (1, S.N_FRAMES, S.N_BINS)
    y = m.inverse(m(x), phase)
    assert S.log_spectral_distance(x, y) < 3.0
    assert abs(cents_error(y.numpy(), np.array([midi]))[0]) < 15


def test_a_release_that_swells_back_is_cut_and_a_fading_one_is_kept():
    """The decoder's release rule: after note-off (3 s) a burst like the generator's edge artefact is cut to at
    most RELEASE_RISE_DB above the quietest release frame before it, while a note that fades is left alone."""
    m = S.IFMel(mel=True)
    m.set_range(np.log(S.LOG_EPS), 4.0)
    fading = m.encode(harmonic_note(48))
    assert torch.equal(m.fading_release(fading), fading)

    swelling = fading.clone()
    swelling[:, 0, 120:125] = 0.5                                  # loud frames near the note's end
    lo, hi = m.mag_range
    level_db = lambda f: torch.logsumexp(2 * ((f[:, 0] + 1) * 0.5 * (hi - lo) + lo), dim=2)[0] / 2 * 20 / np.log(10)
    before, after = level_db(swelling), level_db(m.fading_release(swelling))
    r = S.RELEASE_FRAME
    quietest = torch.cummin(after[r:], dim=0).values
    assert float(before[120] - before[119]) > 20
    assert float((after[r:] - quietest).max()) <= S.RELEASE_RISE_DB + 1e-3
    assert torch.equal(after[:r], before[:r])                     # the hold is untouched
