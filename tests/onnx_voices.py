"""Small ONNX note models with known answers, built with the onnx helper API (no torch): a tone at the pitch whose
third harmonic and level grow with an optional velocity input, under a fixed envelope of the test's choosing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RATE = 48000
Z_DIM = 4


def tone_onnx(path: Path, envelope: np.ndarray, *, velocity: bool = True, layers: list[int] | None = None,
              pitch_min: int = 57, pitch_max: int = 63, release_seconds: float = 1.0, rate: int = RATE,
              stretch: float = 0.0, z_level: bool = False) -> Path:
    """audio = v · (sin φ + v · sin (3 + stretch · v) φ) · envelope, φ = 2π f(pitch) t, v = velocity (0.5 without
    the input).

    So a layer rendered at velocity v has its third partial at v times the fundamental (mistuned by `stretch` · v
    harmonics), and its level grows with v. `envelope` sets the note's length (samples at `rate`). With `z_level`
    the timbre sets the level instead of being ignored: audio is multiplied by the sum of z."""
    samples = len(envelope)
    t = np.arange(samples, dtype=np.float64) / rate
    consts = {"two_pi_t": (2 * np.pi * t)[None].astype(np.float32), "env": envelope[None].astype(np.float32),
              "c69": np.array(69.0, np.float32), "c12": np.array(12.0, np.float32),
              "c2": np.array(2.0, np.float32), "c440": np.array(440.0, np.float32),
              "c3": np.array(3.0, np.float32), "stretch": np.array(stretch, np.float32), "c0": np.array(0.0, np.float32), "axis1": np.array([1], np.int64),
              "half": np.array([[0.5]], np.float32)}
    inits = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    n = helper.make_node
    nodes = [
        n("Cast", ["pitch"], ["pf"], to=TensorProto.FLOAT),
        n("Sub", ["pf", "c69"], ["semis"]), n("Div", ["semis", "c12"], ["octaves"]),
        n("Pow", ["c2", "octaves"], ["ratio"]), n("Mul", ["ratio", "c440"], ["f"]),
        n("Unsqueeze", ["f", "axis1"], ["f2"]), n("Mul", ["f2", "two_pi_t"], ["phase"]),
        n("Sin", ["phase"], ["s1"]),
    ]
    if velocity:
        nodes.append(n("Unsqueeze", ["velocity", "axis1"], ["v"]))
    else:
        nodes.append(n("Identity", ["half"], ["v"]))
    nodes += [
        n("Mul", ["v", "stretch"], ["mistune"]), n("Add", ["mistune", "c3"], ["k3"]),
        n("Mul", ["phase", "k3"], ["phase3"]), n("Sin", ["phase3"], ["s3"]),
        n("Mul", ["s3", "v"], ["bright"]), n("Add", ["s1", "bright"], ["tone"]), n("Mul", ["tone", "v"], ["loud"]),
        n("Mul", ["loud", "env"], ["shaped"]),
        n("ReduceSum", ["z", "axis1"], ["zsum"], keepdims=1),
    ]
    if z_level:
        nodes.append(n("Mul", ["shaped", "zsum"], ["audio"]))
    else:  # z takes part, weighted 0: the timbre does not matter here
        nodes += [n("Mul", ["zsum", "c0"], ["zero"]), n("Add", ["shaped", "zero"], ["audio"])]
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["b", Z_DIM]),
              helper.make_tensor_value_info("pitch", TensorProto.INT64, ["b"])]
    if velocity:
        inputs.append(helper.make_tensor_value_info("velocity", TensorProto.FLOAT, ["b"]))
    audio = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["b", samples])
    graph = helper.make_graph(nodes, "tone", inputs, [audio], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    meta = {"sample_rate": str(rate), "z_dim": str(Z_DIM), "pitch_min": str(pitch_min), "pitch_max": str(pitch_max),
            "note_seconds": str(samples / rate), "release_seconds": str(release_seconds),
            "training_data": "analytic test tones", "metrics": "{}", "version": "test"}
    if layers is not None:
        meta["velocity_layers"] = json.dumps(layers)
    helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def envelope(kind: str, rate: int = RATE, hold: float = 3.0, release: float = 1.0) -> np.ndarray:
    """'percussive': falls 10 dB a second from a 5 ms attack, then 8 e-folds a second after note-off;
    'sustained': steady, and after note-off half the level for 0.3 s, then a straight line to silence at 0.6 s;
    'steady': steady, with no release part at all; 'wobbling': as sustained, its level wandering without a period
    (seeded noise at 1-10 Hz, 2 dB RMS) as a real note's bow or breath does."""
    t = np.arange(int((hold + (0 if kind == "steady" else release)) * rate)) / rate
    attack = np.clip(t / 0.005, 0.0, 1.0)
    if kind == "wobbling":
        spectrum = np.fft.rfft(np.random.default_rng(7).standard_normal(len(t)))
        f = np.fft.rfftfreq(len(t), 1 / rate)
        db = np.fft.irfft(np.where((f > 1) & (f < 10), spectrum, 0), len(t))
        return envelope("sustained", rate, hold, release) * 10 ** (2 * db / db.std() / 20)
    if kind == "percussive":
        held = 10 ** (-10 * np.minimum(t, hold) / 20)
        return attack * held * np.where(t < hold, 1.0, np.exp(-8 * (t - hold)))
    after = t - hold
    rel = np.where(after < 0.3, 0.5, np.clip(0.5 * (0.6 - after) / 0.3, 0.0, None))
    return attack * np.where(t < hold, 1.0, rel)
