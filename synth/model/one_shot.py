"""One-shot import: a recorded note becomes a timbre latent the whole keyboard plays.

The note is read (any file libsndfile reads, any rate and channel count), its pitch found, its level brought to
where the encoder met its training notes, encoded by the voice's encoder (shipped beside the model as
`NAME.encoder.pt`) and refined by a few optimisation steps of z against the note's own multi-resolution spectrum
through the generator. Everything a user can hand in is checked first and refused in one line.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synth.core.notes import HOLD_SECONDS, NOTE_SECONDS, PITCH_MAX, PITCH_MIN, SAMPLE_RATE
from synth.core.resample import resample
from synth.model.hnsynth import HOP, spectral_loss
from synth.model.voice import Encoder, MelFeatures, Voice

MIN_SECONDS, MAX_SECONDS = 0.2, 10.0  # of sound, after the silence before the onset is trimmed
ONSET_DB = -40.0  # the note starts where its level first comes within this of its peak
SILENT_PEAK = 10 ** (-70 / 20)  # a file whose peak is under -70 dBFS holds no note
ENCODER_VERSION = 1
LAYER_VELOCITY = 80  # the velocity the sound is taken to be played at (the model's middle layer)
# The refinement's price on z's mean square move from the encoder's latent. Free (0), 40 steps wandered 0.65-0.85
# per dimension for a closer note at its own pitch, and the preset's other pitches lost the instrument's family (56
# held-out imports on the shipped voice: mean share of pitches in the family 0.60 encoded, 0.52 refined freely,
# 0.56 at 1, 0.58 at 3; the note as close at each weight, mean log-spectral distance 4.6 dB).
KEEP_WEIGHT = 1.0


class OneShotError(ValueError):
    """A sound that cannot be imported, with the reason in words."""


@dataclass
class Imported:
    z: np.ndarray          # the played latent (the model file's z input)
    pitch: int             # the MIDI pitch the note was encoded at (in the model's range)
    detected: float        # the pitch found in (or given for) the sound, fractional MIDI
    octaves: int           # octaves the sound was moved by to reach the model's range
    encoded_lsd: float     # log-spectral distance (dB) of the encoder's note to the original ...
    lsd: float             # ... and of the refined one
    original: np.ndarray   # the sound as compared, 48 kHz mono, its level matched to the model's note
    ours: np.ndarray       # the model's note at `pitch` from z, same length


def read_sound(path: str | os.PathLike) -> np.ndarray:
    """The sound of an audio file as 48 kHz mono float32, from its onset: refused in one line when it is not
    audio libsndfile reads, silent, or shorter than MIN_SECONDS or longer than MAX_SECONDS of sound."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise OneShotError(f"{path} not found")
    def unreadable(e: Exception) -> OneShotError:
        return OneShotError(f"{path} is not an audio file this program reads ({str(e).strip() or type(e).__name__})")

    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise unreadable(e) from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise OneShotError(f"{path} holds no audio")
    if info.frames / info.samplerate > 4 * MAX_SECONDS + 5:  # refused before it is read into memory
        raise OneShotError(f"{path} lasts {info.frames / info.samplerate:.0f} s; a one-shot is one note of "
                           f"{MIN_SECONDS}-{MAX_SECONDS:.0f} s")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise unreadable(e) from None
    return from_onset(data.mean(axis=1), rate, str(path))


def from_onset(mono: np.ndarray, rate: int, where: str = "the sound") -> np.ndarray:
    """A mono recording as 48 kHz float32 from its onset (the first 2 ms before the level comes within ONSET_DB
    of the peak kept); refused when silent, or shorter than MIN_SECONDS or longer than MAX_SECONDS of sound."""
    mono = np.nan_to_num(np.asarray(mono, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.abs(mono).max()) if len(mono) else 0.0
    if peak < SILENT_PEAK:
        raise OneShotError(f"{where} is silent (peak {20 * math.log10(max(peak, 1e-12)):.0f} dBFS)")
    start = int(np.argmax(np.abs(mono) >= peak * 10 ** (ONSET_DB / 20)))
    sound = mono[max(0, start - int(0.002 * rate)):]
    seconds = len(sound) / rate
    if seconds < MIN_SECONDS:
        raise OneShotError(f"{where} has {seconds:.2f} s of sound; a one-shot needs at least {MIN_SECONDS} s of a "
                           "held or ringing note")
    if seconds > MAX_SECONDS:
        raise OneShotError(f"{where} has {seconds:.1f} s of sound; a one-shot is one note of at most "
                           f"{MAX_SECONDS:.0f} s (cut it to the note)")
    if rate != SAMPLE_RATE:
        sound = resample(sound, int(round(len(sound) * SAMPLE_RATE / rate)))
    return np.asarray(sound, dtype=np.float32)


def detect_pitch(sound: np.ndarray, where: str = "the sound") -> float:
    """The note's pitch (fractional MIDI) from YIN (windows of 85 ms: two periods of MIDI 21) over its first
    1.5 s; refused when it has none that holds
    (noise, a drum, silence, a chord's beating): fewer than half the frames voiced, or their pitch wandering
    more than a semitone."""
    from synth.model.evaluate import yin_f0_frames

    f0 = yin_f0_frames(sound[None, : SAMPLE_RATE * 2], start=0.02, stop=min(1.5, len(sound) / SAMPLE_RATE),
                       fmin=25.0, fmax=4300.0, window=4096)[0]
    voiced = f0[np.isfinite(f0)]
    if len(f0) == 0 or len(voiced) < max(2, len(f0) // 2):
        raise OneShotError(f"{where} has no stable pitch (a pitched note was expected, not noise or a drum); "
                           "give one with --pitch")
    midi = 69 + 12 * np.log2(voiced / 440.0)
    spread = float(np.percentile(midi, 75) - np.percentile(midi, 25))
    if spread > 1.0:
        raise OneShotError(f"{where} has no stable pitch (it wanders over {spread:.1f} semitones); give one with "
                           "--pitch")
    return _sharpen(sound, float(np.median(midi)))


def _sharpen(sound: np.ndarray, midi: float) -> float:
    """YIN's pitch made exact: the loudest spectral peak within half a semitone of it (a 5-second FFT of the
    first 1.5 s, the peak's top found by a parabola through the log magnitudes)."""
    x = np.asarray(sound[: int(1.5 * SAMPLE_RATE)], np.float64)
    n = 1 << 18
    mag = np.log(np.abs(np.fft.rfft(x * np.hanning(len(x)), n)) + 1e-12)
    hz = lambda m: 440.0 * 2 ** ((m - 69) / 12)  # noqa: E731
    lo, hi = int(hz(midi - 0.5) * n / SAMPLE_RATE), int(np.ceil(hz(midi + 0.5) * n / SAMPLE_RATE))
    if lo < 1 or hi >= len(mag) - 1:
        return midi
    k = lo + int(np.argmax(mag[lo:hi + 1]))
    a, b, c = mag[k - 1], mag[k], mag[k + 1]
    if not (b >= a and b >= c) or k in (lo, hi):  # no peak inside the window: keep YIN's
        return midi
    offset = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c != 0 else 0.0
    return float(69 + 12 * np.log2((k + offset) * SAMPLE_RATE / n / 440.0))


def encoder_path(model_path: str | os.PathLike) -> Path:
    """Where a model file's encoder lives: beside it, NAME.encoder.pt."""
    path = Path(model_path)
    return path.with_name(path.stem + ".encoder.pt")


def generator_fingerprint(voice: Voice) -> str:
    """A hash of the generator's weights: ties an encoder file to the one model it was trained with."""
    h = hashlib.sha256()
    for name, tensor in sorted(voice.generator.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_encoder(encoder: Encoder, voice: Voice, model_path: str | os.PathLike) -> Path:
    """Write the encoder beside its model file (atomic)."""
    from synth.core.files import replacing

    path = encoder_path(model_path)
    with replacing(path) as tmp:
        torch.save({"version": ENCODER_VERSION, "z_dim": voice.generator.cfg.z_dim,
                    "encoder": encoder.state_dict(), "generator": generator_fingerprint(voice)}, tmp)
    return path


def load_encoder(model_path: str | os.PathLike, voice: Voice) -> Encoder:
    """The encoder saved beside a model file, refused in one line if missing or made for another model."""
    path = encoder_path(model_path)
    if not path.is_file():
        raise OneShotError(f"{Path(model_path).name} has no encoder beside it ({path.name}); export the model "
                           "again from its training checkpoint to write one")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or saved.get("version") != ENCODER_VERSION:
            raise ValueError("not an encoder file of this version")
        encoder = Encoder(int(saved["z_dim"]))
        encoder.load_state_dict(saved["encoder"])
    except Exception as e:  # a damaged file can fail in torch's unpickler in many ways; all mean the same here
        raise OneShotError(f"{path} is not a readable encoder file ({str(e).splitlines()[0] if str(e) else e!r})") \
            from None
    if saved.get("generator") != generator_fingerprint(voice):
        raise OneShotError(f"{path.name} belongs to another model than {Path(model_path).name}; export the model "
                           "again from its training checkpoint")
    return encoder.eval()


def load_model(model_path: str | os.PathLike) -> tuple[Voice, Encoder]:
    """The voice rebuilt from a model file and its encoder."""
    from synth.model.voice_export import voice_from_model_file

    try:
        voice = voice_from_model_file(model_path).eval()
    except (OSError, ValueError, KeyError) as e:
        raise OneShotError(f"{model_path} cannot take imported sounds: {e}") from None
    return voice, load_encoder(model_path, voice)


def log_spectral_distance(a: np.ndarray, b: np.ndarray, n_fft: int = 2048, floor_db: float = 80.0) -> float:
    """Mean over frames of the RMS difference (dB) of two sounds' power spectra (b's level matched to a's), each
    floored `floor_db` under a's loudest bin so silence between partials does not count."""
    n = min(len(a), len(b))
    window = np.hanning(n_fft)

    def power(x: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(np.asarray(x[:n], np.float64), n_fft)[:: n_fft // 4]
        return np.abs(np.fft.rfft(frames * window, axis=1)) ** 2

    pa, pb = power(a), power(b)
    pb = pb * (pa.sum() / max(pb.sum(), 1e-30))
    floor = pa.max() * 10 ** (-floor_db / 10) + 1e-30
    da, db = 10 * np.log10(np.maximum(pa, floor)), 10 * np.log10(np.maximum(pb, floor))
    return float(np.mean(np.sqrt(np.mean((da - db) ** 2, axis=1))))


def _in_range(sound: np.ndarray, pitch: float) -> tuple[np.ndarray, float, int]:
    """The sound moved by whole octaves (resampled: faster and shorter up, slower and longer down) until its
    pitch lies in the model's range; the new pitch and the octaves."""
    octaves = 0
    while pitch + 12 * octaves < PITCH_MIN - 0.5:
        octaves += 1
    while pitch + 12 * octaves > PITCH_MAX + 0.5:
        octaves -= 1
    if octaves:
        sound = resample(sound, max(1, int(round(len(sound) * 2.0 ** -octaves))))
    return sound, pitch + 12 * octaves, octaves


def import_sound(voice: Voice, encoder: Encoder, sound: np.ndarray, pitch: float | None = None,
                 steps: int = 40, where: str = "the sound", keep: float | None = None) -> Imported:
    """The latent of a one-shot (48 kHz mono, from its onset): encode it at its pitch, then refine z for `steps`
    Adam steps on the spectral loss over its first HOLD_SECONDS plus `keep` (default KEEP_WEIGHT) times the mean
    square of z's move from the encoder's, keeping the best."""
    keep = KEEP_WEIGHT if keep is None else keep
    detected = detect_pitch(sound, where) if pitch is None else float(pitch)
    sound, moved, octaves = _in_range(sound, detected)
    key = int(round(moved))
    hold = min(len(sound), int(HOLD_SECONDS * SAMPLE_RATE)) // HOP
    if hold < 2:
        raise OneShotError(f"{where} is too short once moved into the model's range")
    p = torch.tensor([key])
    v = torch.tensor([LAYER_VELOCITY / 127.0])
    note = np.zeros(int(NOTE_SECONDS * SAMPLE_RATE), np.float32)
    note[: min(len(sound), len(note))] = sound[: len(note)]
    target = torch.from_numpy(note)[None]
    mel = MelFeatures()
    with torch.no_grad():
        latent = encoder(mel(target), p, v)[0]
        ours = voice.decode(latent, p, v)
        # The encoder met notes at the note set's levels: bring the sound to the level the model answers with,
        # and encode it again at that level.
        gain = float(ours[0, : hold * HOP].pow(2).mean().sqrt() / target[0, : hold * HOP].pow(2).mean().sqrt())
        target = target * gain
        latent = encoder(mel(target), p, v)[0]
        z0 = voice.to_input(latent)
    real = target[:, : hold * HOP]
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.05)
    best, best_loss = z0.clone(), math.inf
    for _ in range(steps + 1):
        amplitudes, f0_dev, noise, unison = voice.controls(voice.prior_mean + z @ voice.prior_map, p, v)
        loss = (spectral_loss(voice.synth(amplitudes, f0_dev, noise, p, 0, hold, unison), real)
                + keep * (z - z0).pow(2).mean())
        if loss.item() < best_loss:
            best, best_loss = z.detach().clone(), loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        encoded = voice(z0, p, v)[0, : hold * HOP].numpy()
        played = voice(best, p, v)[0, : hold * HOP].numpy()
    original = real[0].numpy()
    return Imported(best[0].numpy().astype(np.float32), key, detected, octaves,
                    log_spectral_distance(original, encoded), log_spectral_distance(original, played),
                    original, played)


def comparison_picture(result: Imported, path: str | os.PathLike, title: str) -> None:
    """A PNG of the original sound's spectrogram beside the model's note, drawn as the preset pictures are
    (timbre_map.spectrogram_panel); atomic."""
    from PIL import Image, ImageDraw

    from synth.core.files import replacing
    from synth.model.timbre_map import spectrogram_panel

    a, b = spectrogram_panel(result.original, SAMPLE_RATE), spectrogram_panel(result.ours, SAMPLE_RATE)
    img = Image.new("L", (a.shape[1] + 4 + b.shape[1], a.shape[0]))
    img.paste(Image.fromarray(a), (0, 0))
    img.paste(Image.fromarray(b), (a.shape[1] + 4, 0))
    draw = ImageDraw.Draw(img)
    draw.text((4, 4), f"{title}\noriginal", fill=255)
    draw.text((a.shape[1] + 8, 4), f"model, MIDI {result.pitch}\nLSD {result.lsd:.1f} dB", fill=255)
    with replacing(path) as tmp:
        img.save(tmp, format="PNG")
