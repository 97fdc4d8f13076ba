"""The vibrato tracker reads a known vibrato off real synthesis, trusts nothing in noise or silence, and its loss
leads a free pitch curve onto the tracked one."""
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from synth.model.hnsynth import HOP
from synth.model.vibrato import track, vibrato_loss

SR = 48000
SECONDS = 4.0


def _note(pitch: int, depth_cents: float, rate_hz: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """A sawtooth-like tone with a sine vibrato that fades in over 0.5 s; and its curve in semitones at HOP."""
    t = np.arange(int(SECONDS * SR)) / SR
    dev = depth_cents * np.sin(2 * np.pi * rate_hz * t + 0.3) * np.minimum(1.0, t / 0.5)
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    phase = np.cumsum(f0 * 2 ** (dev / 1200)) / SR
    x = 0.1 * sum(np.sin(2 * np.pi * k * phase) / k for k in range(1, 9) if k * f0 < 20000)
    return x.astype(np.float32), (dev[::HOP] / 100.0).astype(np.float32)


def test_the_tracker_reads_the_depth_of_a_vibrato_at_low_middle_and_high_pitches():
    for pitch in (33, 60, 84):
        audio, _ = _note(pitch, 20.0)
        cents, weight = track(audio[None], np.array([pitch]))
        assert weight.sum() > 100, pitch  # most of the held 2.75 s (20 ms frames) is trusted
        std = np.sqrt((cents**2 * weight).sum() / weight.sum())
        assert 11.0 < std < 15.0, (pitch, std)  # a ±20-cent sine: 14.1 cents, a little less through 85 ms frames


def test_a_steady_tone_reads_steady_and_noise_or_silence_is_not_trusted():
    steady, _ = _note(57, 0.0)
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(int(SECONDS * SR))).astype(np.float32)
    silence = np.zeros(int(SECONDS * SR), np.float32)
    cents, weight = track(np.stack([steady, noise, silence]), np.array([57, 60, 60]))
    assert weight[0].sum() > 100 and np.abs(cents[0][weight[0] > 0]).max() < 0.5
    assert weight[1].sum() == 0 and weight[2].sum() == 0


def test_the_loss_prefers_the_true_curve_and_leads_a_free_curve_onto_it():
    audio, truth = _note(64, 15.0)
    cents, weight = map(torch.from_numpy, track(audio[None], np.array([64])))
    truth_t = torch.from_numpy(truth)[None]
    exact = vibrato_loss(truth_t, cents, weight, HOP).item()
    flat = vibrato_loss(torch.zeros_like(truth_t), cents, weight, HOP).item()
    late = vibrato_loss(torch.roll(truth_t, 20, 1), cents, weight, HOP).item()  # 0.1 s late: half a cycle
    assert exact < 0.1 * flat and flat < late
    free = torch.zeros_like(truth_t, requires_grad=True)
    opt = torch.optim.Adam([free], lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        vibrato_loss(free, cents, weight, HOP).backward()
        opt.step()
    assert vibrato_loss(free.detach(), cents, weight, HOP).item() < 0.3 * flat


@settings(max_examples=25, deadline=None)
@given(pitch=st.integers(21, 108), level=st.floats(0.0, 1.0), depth=st.floats(0.0, 40.0),
       noise=st.floats(0.0, 0.5), seed=st.integers(0, 2**16))
def test_the_tracker_gives_finite_curves_and_binary_weights_for_any_tone(pitch, level, depth, noise, seed):
    audio, _ = _note(pitch, depth)
    audio = level * audio + noise * np.random.default_rng(seed).standard_normal(len(audio)).astype(np.float32)
    cents, weight = track(audio[None].astype(np.float32), np.array([pitch]))
    assert np.isfinite(cents).all() and set(np.unique(weight)) <= {0.0, 1.0}
    assert (cents[weight == 0] == 0).all()


def test_the_any_phase_loss_asks_for_depth_and_rate_whenever_the_vibrato_swings():
    audio, truth = _note(64, 15.0)
    cents, weight = map(torch.from_numpy, track(audio[None], np.array([64])))
    truth_t = torch.from_numpy(truth)[None]

    def loss(curve: torch.Tensor) -> float:
        return vibrato_loss(curve, cents, weight, HOP, any_phase=True).item()

    flat = loss(torch.zeros_like(truth_t))
    assert loss(truth_t) < 0.1 * flat and loss(torch.roll(truth_t, 20, 1)) < 0.1 * flat  # late is as good
    assert loss(0.5 * truth_t) > 0.4 * flat and loss(2.0 * truth_t) > 0.8 * flat         # the wrong depth is not
    t = torch.arange(truth_t.shape[1]) * HOP / SR  # a swing 1 Hz faster still gains from the real depth
    off_rate = [loss(d / 100.0 * torch.sin(2 * np.pi * 6.0 * t)[None]) for d in (1.0, 5.0, 15.0, 30.0)]
    assert off_rate[0] > off_rate[1] > off_rate[2] < off_rate[3]
    free = (0.01 * torch.randn_like(truth_t, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
    opt = torch.optim.Adam([free], lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        vibrato_loss(free, cents, weight, HOP, any_phase=True).backward()
        opt.step()
    assert loss(free.detach()) < 0.1 * flat


def test_evals_vibrato_measure_reads_the_depth_of_a_vibrato_and_next_to_nothing_on_a_steady_tone():
    from synth.model.sound_metrics import vibrato_depth

    for pitch in (24, 60, 100):
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        wavering, _ = _note(pitch, 20.0)
        steady, _ = _note(pitch, 0.0)
        assert 12.0 < vibrato_depth(wavering.astype(np.float64), SR, f0) < 15.0, pitch  # a ±20-cent sine: 14.1
        assert vibrato_depth(steady.astype(np.float64), SR, f0) < 0.5, pitch
    assert np.isnan(vibrato_depth(np.zeros(int(SECONDS * SR)), SR, 261.6))
