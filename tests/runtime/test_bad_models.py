"""Broken models are refused in one line naming the file and the problem: absurd metadata, a probe note that is
NaN, Inf, constant or of the wrong length; and a model that breaks only at some pitches stops a render with one
line instead of writing NaN. The models are small ONNX graphs built with onnx's helper API."""
import json
import subprocess
import sys

import mido
import numpy as np
import pytest
from onnx import TensorProto, helper, save

from synth.runtime.model import ModelError, NoteModel

RATE, SECONDS, Z = 16000, 1.0, 8
GOOD = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(RATE * SECONDS)) / RATE)
        * np.linspace(1, 0, int(RATE * SECONDS))).astype(np.float32)


def build(path, row, meta=None, nan_below=None):
    """A model whose every note is `row` (audio[b, n] = row[n]); with `nan_below`, notes under that pitch are NaN
    (log of a negative number). `meta` overrides the contract metadata."""
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["b", Z])
    pitch = helper.make_tensor_value_info("pitch", TensorProto.INT64, ["b"])
    audio = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["b", len(row)])
    consts = [helper.make_tensor("row", TensorProto.FLOAT, [1, len(row)], np.asarray(row, np.float32).tolist()),
              helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
              helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
              helper.make_tensor("edge", TensorProto.FLOAT, [], [float(nan_below or -1000)])]
    nodes = [helper.make_node("Cast", ["pitch"], ["pf"], to=TensorProto.FLOAT),
             helper.make_node("Sub", ["pf", "edge"], ["above"]),
             helper.make_node("Log", ["above"], ["lg"]),  # NaN below the edge pitch, finite above
             helper.make_node("ReduceSum", ["z", "axis"], ["zs"], keepdims=0),
             helper.make_node("Add", ["lg", "zs"], ["s"]),
             helper.make_node("Mul", ["s", "zero"], ["s0"]),  # 0 (or NaN) per note
             helper.make_node("Unsqueeze", ["s0", "axis"], ["col"]),
             helper.make_node("Add", ["col", "row"], ["audio"])]
    graph = helper.make_graph(nodes, "g", [z, pitch], [audio], initializer=consts)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    props = {"sample_rate": str(RATE), "z_dim": str(Z), "pitch_min": "24", "pitch_max": "84",
             "note_seconds": str(SECONDS), "release_seconds": "0.3", "training_data": "test graph",
             "metrics": json.dumps({}), "version": "test"}
    props.update(meta or {})
    helper.set_model_props(proto, props)
    save(proto, str(path))
    return path


def refused(path, match):
    with pytest.raises(ModelError, match=match) as e:
        NoteModel(path, provider="cpu")
    message = str(e.value)
    assert "\n" not in message and str(path) in message
    return message


def test_a_good_graph_loads(tmp_path):
    model = NoteModel(build(tmp_path / "good.onnx", GOOD), provider="cpu")
    assert np.array_equal(model.render(np.zeros((2, Z), np.float32), [40, 80]), np.stack([GOOD, GOOD]))


@pytest.mark.parametrize("name, row, match", [
    ("nan", np.full(RATE, np.nan), "non-finite"),
    ("inf", np.where(np.arange(RATE) == 100, np.inf, GOOD), "non-finite"),
    ("empty", np.zeros(0), "metadata says 16000"),
    ("ten", GOOD[:10], r"shape \[10\] samples; its metadata says 16000"),
    ("constant", np.full(RATE, 0.25), "constant"),
])
def test_probe_note_refuses_broken_output(tmp_path, name, row, match):
    refused(build(tmp_path / f"{name}.onnx", row), match)


@pytest.mark.parametrize("meta, match", [
    ({"sample_rate": "1"}, "sample_rate 1 is outside 8000-192000 Hz"),
    ({"note_seconds": "1e9"}, r"note_seconds 1000000000.0 is outside \(0, 60\]"),
    ({"note_seconds": "nan"}, "note_seconds nan"),
    ({"z_dim": "0"}, "z_dim 0 is outside 1-4096"),
    ({"pitch_min": "90"}, "pitch range 90-84"),
    ({"pitch_max": "200"}, "pitch range 24-200"),
    ({"release_seconds": "2"}, "release_seconds 2.0 is not between 0 and note_seconds"),
])
def test_absurd_metadata_is_refused(tmp_path, meta, match):
    refused(build(tmp_path / "meta.onnx", GOOD, meta), "absurd metadata: " + match)


def test_a_model_broken_at_some_pitches_stops_a_render_in_one_line(tmp_path):
    model_path = build(tmp_path / "low-nan.onnx", GOOD, nan_below=40)  # the probe (pitch 54) is fine
    model = NoteModel(model_path, provider="cpu")
    with pytest.raises(ModelError, match="non-finite"):
        model.render(np.zeros((2, Z), np.float32), [30, 60])
    song = mido.MidiFile()
    track = mido.MidiTrack([mido.Message("note_on", note=30, velocity=100),
                            mido.Message("note_off", note=30, time=480)])
    song.tracks.append(track)
    song.save(tmp_path / "low.mid")
    out = tmp_path / "low.wav"
    proc = subprocess.run([sys.executable, "-m", "synth", "render", str(tmp_path / "low.mid"), "-o", str(out),
                           "--model", str(model_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("gansynth-live: model file"), proc.stderr
    assert "non-finite" in proc.stderr and not out.exists()


def test_a_latent_with_nan_or_inf_is_refused_before_the_model_runs(tiny_model):
    """NaN reaching the synthesis graph's table read made onnxruntime fail deep inside with an index error."""
    model = NoteModel(tiny_model)
    for bad in (np.nan, np.inf):
        z = np.zeros((1, model.info.z_dim), np.float32)
        z[0, 3] = bad
        with pytest.raises(ModelError, match="NaN or infinite"):
            model.render(z, [60], [0.5])
