"""Load a shipped ONNX note model with onnxruntime, check its contract, and render notes.

Contract: inputs z float32[batch, Z], pitch int64[batch] (MIDI numbers) and optionally velocity float32[batch]
(MIDI velocity / 127); output audio float32[batch, samples]; metadata sample_rate, z_dim, pitch_min, pitch_max,
note_seconds, release_seconds, training_data, metrics, version, and optionally velocity_layers (a JSON list of
MIDI velocities the note bank renders, e.g. [40, 80, 120]; default one layer at 127, the level older models play).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "assets" / "default.onnx"
REQUIRED_METADATA = ("sample_rate", "z_dim", "pitch_min", "pitch_max", "note_seconds", "release_seconds",
                     "training_data", "metrics", "version")
MIN_RATE, MAX_RATE = 8000, 192000  # what metadata may claim; anything else is a broken or hostile file
MAX_Z_DIM = 4096
MAX_NOTE_SECONDS = 60.0
# Preference order: NVIDIA, Apple, Windows GPUs, then CPU.
PROVIDER_ORDER = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "DmlExecutionProvider", "CPUExecutionProvider")


class ModelError(ValueError):
    """A model file that cannot be used, with a one-line reason."""


@dataclass(frozen=True)
class ModelInfo:
    sample_rate: int
    z_dim: int
    pitch_min: int
    pitch_max: int
    note_seconds: float
    release_seconds: float
    training_data: str
    metrics: dict
    version: str
    velocity_layers: tuple[int, ...] = (127,)


def choose_providers(available: list[str], wanted: str | None = None) -> list[str]:
    """Providers to ask for: `wanted` ('cuda', 'cpu', or a full provider name) or the best available, CPU last."""
    if wanted:
        name = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider", "coreml": "CoreMLExecutionProvider",
                "directml": "DmlExecutionProvider"}.get(wanted.lower(), wanted)
        if name not in available:
            raise ModelError(f"execution provider {wanted!r} is not available here; available: {', '.join(available)}")
        return [name] if name == "CPUExecutionProvider" else [name, "CPUExecutionProvider"]
    return [p for p in PROVIDER_ORDER if p in available] or ["CPUExecutionProvider"]


def _parse_metadata(path: Path, meta: dict[str, str]) -> ModelInfo:
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise ModelError(f"model file {path} lacks metadata {', '.join(missing)}: export it with 'gansynth-live export'")
    try:
        info = ModelInfo(sample_rate=int(meta["sample_rate"]), z_dim=int(meta["z_dim"]),
                         pitch_min=int(meta["pitch_min"]), pitch_max=int(meta["pitch_max"]),
                         note_seconds=float(meta["note_seconds"]), release_seconds=float(meta["release_seconds"]),
                         training_data=meta["training_data"], metrics=json.loads(meta["metrics"]),
                         version=meta["version"])
    except (ValueError, json.JSONDecodeError) as e:
        raise ModelError(f"model file {path} has unreadable metadata ({e})") from None
    checks = (
        (MIN_RATE <= info.sample_rate <= MAX_RATE,
         f"sample_rate {info.sample_rate} is outside {MIN_RATE}-{MAX_RATE} Hz"),
        (1 <= info.z_dim <= MAX_Z_DIM, f"z_dim {info.z_dim} is outside 1-{MAX_Z_DIM}"),
        (0 <= info.pitch_min <= info.pitch_max <= 127,
         f"pitch range {info.pitch_min}-{info.pitch_max} is not within MIDI's 0-127, low to high"),
        (0 < info.note_seconds <= MAX_NOTE_SECONDS,
         f"note_seconds {info.note_seconds} is outside (0, {MAX_NOTE_SECONDS:g}]"),
        (0 <= info.release_seconds < info.note_seconds,
         f"release_seconds {info.release_seconds} is not between 0 and note_seconds ({info.note_seconds})"),
    )
    for ok, problem in checks:
        if not ok:  # NaN fails every comparison, so it lands here too
            raise ModelError(f"model file {path} has absurd metadata: {problem}")
    return info


def check_output(path: Path, audio: np.ndarray, notes: int, samples: int) -> np.ndarray:
    """A rendered batch as the contract says (`notes` rows of `samples` finite samples), else a one-line
    ModelError: a broken model must stop with a message, never put NaN into the bank or the output."""
    if audio.shape != (notes, samples):
        raise ModelError(f"model file {path} rendered notes of shape {list(audio.shape)[1:] or '?'} samples; its "
                         f"metadata says {samples} (note_seconds x sample_rate)")
    if not np.isfinite(audio).all():
        raise ModelError(f"model file {path} rendered non-finite samples (NaN or Inf): the model is broken")
    return audio


def live_threads() -> int:
    """Inference threads while audio plays: every core. The render worker runs niced in its own process and the
    audio threads above it (JACK's real-time threads, our helpers at SCHED_FIFO), so the kernel hands the callback
    its core at once; on 2 cores 120 s soaks counted as many underruns with two inference threads as with one
    (17 and 16 against 11 and 20; docs/measurements.md), and a whole bank took 2.8-2.9 s instead of 3.4-3.7 s."""
    return max(1, os.cpu_count() or 1)


class NoteModel:
    """A validated note model: render(z, pitches) → audio [batch, samples] at info.sample_rate."""

    def __init__(self, path: str | os.PathLike = DEFAULT_MODEL, provider: str | None = None, threads: int = 0) -> None:
        import onnxruntime as ort

        ort.disable_telemetry_events()  # with ORT_DISABLE_TELEMETRY (synth/__init__.py): nothing leaves the machine
        self.path = Path(path)
        self.threads = threads
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} not found")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        # Idle pool threads must sleep, not spin: they share the cores with the audio callback.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = choose_providers(ort.get_available_providers(), provider)
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        except Exception as e:  # onnxruntime raises several private exception types for unreadable files
            first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise ModelError(f"model file {self.path} is not a readable ONNX model ({first})") from None
        self.provider = self.session.get_providers()[0]
        meta = self.session.get_modelmeta().custom_metadata_map
        self.info = _parse_metadata(self.path, meta)
        self._check_signature()
        self.info = replace(self.info, velocity_layers=self._velocity_layers(meta))
        self._probe()

    def _probe(self) -> None:
        """Render one note at load: a model that cannot make a finite note of its stated length, or makes a
        constant (silence or DC), is refused now rather than when a key is pressed."""
        info = self.info
        z = np.random.default_rng(0).standard_normal((1, info.z_dim)).astype(np.float32)
        try:
            note = self.render(z, [(info.pitch_min + info.pitch_max) // 2])[0]
        except ModelError as e:
            raise ModelError(f"{e} (a probe note at load)") from None
        except Exception as e:  # onnxruntime's own failures, e.g. a graph that does not run
            first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise ModelError(f"model file {self.path} fails to render a probe note ({first})") from None
        if note.min() == note.max():
            raise ModelError(f"model file {self.path} renders a constant ({note[0]:g}) for its probe note, not a "
                             "sound: the model is broken")

    def _check_signature(self) -> None:
        ins = {i.name: i for i in self.session.get_inputs()}
        outs = self.session.get_outputs()
        where = f"model file {self.path}"
        if set(ins) not in ({"z", "pitch"}, {"z", "pitch", "velocity"}):
            raise ModelError(f"{where} must take inputs 'z', 'pitch' (and optionally 'velocity'), "
                             f"not {', '.join(sorted(ins))}")
        if len(outs) != 1 or outs[0].name != "audio":
            raise ModelError(f"{where} must have one output 'audio', not {', '.join(o.name for o in outs)}")
        z, pitch, audio = ins["z"], ins["pitch"], outs[0]
        self.takes_velocity = "velocity" in ins
        args = [(z, 2, "tensor(float)"), (pitch, 1, "tensor(int64)"), (audio, 2, "tensor(float)")]
        if self.takes_velocity:
            args.append((ins["velocity"], 1, "tensor(float)"))
        for arg, rank, dtype in args:
            if len(arg.shape) != rank or arg.type != dtype:
                raise ModelError(f"{where}: '{arg.name}' must be {dtype[7:-1]} of rank {rank}, "
                                 f"is {arg.type[7:-1]} {list(arg.shape)}")
        if isinstance(z.shape[1], int) and z.shape[1] != self.info.z_dim:
            raise ModelError(f"{where}: 'z' has {z.shape[1]} dimensions but its metadata says {self.info.z_dim}")

    def _velocity_layers(self, meta: dict[str, str]) -> tuple[int, ...]:
        """The metadata's velocity_layers, checked: rising MIDI velocities 1-127, several only with a velocity input."""
        if "velocity_layers" not in meta:
            return (127,)
        where = f"model file {self.path}"
        try:
            layers = json.loads(meta["velocity_layers"])
            ok = (isinstance(layers, list) and layers and all(type(v) is int and 1 <= v <= 127 for v in layers)
                  and all(a < b for a, b in zip(layers, layers[1:])))
        except json.JSONDecodeError:
            ok = False
        if not ok:
            raise ModelError(f"{where}: velocity_layers must be a list of rising MIDI velocities 1-127, "
                             f"is {meta['velocity_layers'][:60]!r}")
        if len(layers) > 1 and not self.takes_velocity:
            raise ModelError(f"{where} declares {len(layers)} velocity layers but has no 'velocity' input")
        return tuple(layers)

    @property
    def note_samples(self) -> int:
        return int(round(self.info.note_seconds * self.info.sample_rate))

    def render(self, z: np.ndarray, pitches: np.ndarray | list[int],
               velocities: np.ndarray | list[float] | None = None) -> np.ndarray:
        """Render one note per row of z at the given MIDI pitches and velocities (0-1, MIDI velocity / 127; default
        the top layer's). A model without a velocity input ignores them."""
        z = np.ascontiguousarray(np.atleast_2d(z), dtype=np.float32)
        pitch = np.asarray(pitches, dtype=np.int64).reshape(-1)
        if z.shape != (len(pitch), self.info.z_dim):
            raise ModelError(f"need one latent of size {self.info.z_dim} per pitch, got {z.shape} for {len(pitch)}")
        if not np.isfinite(z).all():
            raise ModelError("a latent holds NaN or infinite values; the model plays finite numbers only")
        if pitch.size and (pitch.min() < self.info.pitch_min or pitch.max() > self.info.pitch_max):
            raise ModelError(f"pitch out of the model's range {self.info.pitch_min}-{self.info.pitch_max}")
        feed = {"z": z, "pitch": pitch}
        if self.takes_velocity:
            if velocities is None:
                velocities = np.full(len(pitch), self.info.velocity_layers[-1] / 127.0)
            velocity = np.asarray(velocities, dtype=np.float32).reshape(-1)
            if velocity.shape != pitch.shape:
                raise ModelError(f"need one velocity per pitch, got {velocity.size} for {len(pitch)}")
            if not np.all((velocity >= 0) & (velocity <= 1)):
                raise ModelError("velocities must be between 0 and 1 (MIDI velocity / 127)")
            feed["velocity"] = velocity
        return check_output(self.path, self.session.run(["audio"], feed)[0], len(pitch), self.note_samples)
