"""The whole-note envelope loss compares like with like: the band powers it reads off the controls are the band
powers of the audio the synth makes of them."""
import numpy as np
import pytest
import torch

from synth.model.envelope import BandEnvelope
from synth.model.hnsynth import FRAMES, HARMONICS, NOISE_BANDS, HarmonicNoiseSynth


def _controls(pitch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A plucked note: ten harmonics at a k^-1 slope decaying 20 dB/s after a 20 ms attack, and breath noise."""
    t = torch.arange(FRAMES + 1, dtype=torch.float32) * 0.005
    level = torch.clamp(t / 0.02, max=1.0) * 10 ** (-t)
    amplitudes = torch.zeros(1, FRAMES + 1, HARMONICS)
    amplitudes[0, :, :10] = 0.3 * level[:, None] / torch.arange(1, 11)
    noise = torch.full((1, FRAMES + 1, NOISE_BANDS), 0.01) * level[None, :, None]
    return amplitudes, noise


def _note(frame_noise: bool = False) -> tuple[BandEnvelope, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The envelope loss's bands, and the plucked note's controls, pitch and audio."""
    synth = HarmonicNoiseSynth(bands=128, frame_noise=True) if frame_noise else HarmonicNoiseSynth()
    amplitudes, noise = _controls(57)
    if frame_noise:
        noise = torch.nn.functional.interpolate(noise, size=128, mode="linear", align_corners=False)
    pitch = torch.tensor([57])
    return BandEnvelope(synth), amplitudes, noise, pitch, synth(amplitudes, torch.zeros(1, FRAMES + 1), noise, pitch)


@pytest.mark.parametrize("frame_noise", [False, True])
def test_band_powers_of_the_controls_match_those_of_the_synthesised_audio(frame_noise):
    envelope, amplitudes, noise, pitch, audio = _note(frame_noise)
    fake, real = envelope.controls(amplitudes, noise, pitch)[0], envelope.audio(audio)[0]
    assert fake.shape == real.shape == (FRAMES + 1, 8)
    loud = real > 1e-6
    db = 10 * np.log10((fake[loud] / real[loud]).numpy())
    assert loud.sum() > 2000 and np.percentile(np.abs(db), 95) < 1.0, np.percentile(np.abs(db), [50, 95, 100])
    whole, onset = envelope.loss(amplitudes, noise, pitch, audio)
    assert whole < 0.05 and onset < 0.05


def test_the_loss_sees_a_late_attack_and_its_onset_term_sees_it_clearest():
    envelope, amplitudes, noise, pitch, audio = _note()
    slow = torch.clamp(torch.arange(FRAMES + 1) * 0.005 / 0.4, max=1.0)[None, :, None]
    whole, onset = envelope.loss(amplitudes * slow, noise * slow, pitch, audio)
    assert whole > 0.1
    assert onset > 5 * whole  # the slow attack is all in the first 0.4 s: the whole note's mean dilutes it
