"""ONNX export agrees with torch, and the runtime loader refuses files that break the contract."""
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from synth.runtime.model import ModelError, NoteModel, choose_providers


def test_onnx_matches_torch(tiny_model, tiny_synth, rng):
    model = NoteModel(tiny_model, provider="cpu")
    z = rng.standard_normal((4, 16)).astype(np.float32)
    pitch = np.array([24, 47, 60, 84])
    velocity = np.array([0.2, 0.5, 0.7, 1.0], np.float32)
    got = model.render(z, pitch, velocity)
    with torch.no_grad():
        want = tiny_synth(torch.from_numpy(z), torch.from_numpy(pitch), torch.from_numpy(velocity)).numpy()
    assert got.shape == (4, 192000)
    np.testing.assert_allclose(got, want, atol=1e-5 * max(1.0, float(np.abs(want).max())))
    assert model.info.z_dim == 16 and (model.info.pitch_min, model.info.pitch_max) == (24, 84)
    assert model.info.sample_rate == 48000 and model.note_samples == 192000
    assert not np.allclose(model.render(z, pitch, 1.0 - velocity), got)  # velocity is an input, not ignored


def test_render_rejects_bad_arguments(tiny_model):
    model = NoteModel(tiny_model)
    with pytest.raises(ModelError, match="out of the model's range"):
        model.render(np.zeros((1, 16), np.float32), [100])
    with pytest.raises(ModelError, match="one latent of size 16"):
        model.render(np.zeros((1, 8), np.float32), [60])


def _rewrite(src, dst, edit):
    proto = onnx.load(str(src))
    edit(proto)
    onnx.save(proto, str(dst))
    return dst


def _one_line(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_refuses_wrong_input_names(tiny_model, tmp_path):
    def rename(p):
        for node in p.graph.node:
            node.input[:] = ["latent" if i == "z" else i for i in node.input]
        p.graph.input[0].name = "latent"
    bad = _rewrite(tiny_model, tmp_path / "names.onnx", rename)
    with pytest.raises(ModelError, match="inputs 'z', 'pitch'") as e:
        NoteModel(bad)
    _one_line(e)


def test_refuses_wrong_rank(tmp_path, tiny_model):
    meta = {m.key: m.value for m in onnx.load(str(tiny_model)).metadata_props}
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["b", 16, 1])
    pitch = helper.make_tensor_value_info("pitch", TensorProto.INT64, ["b"])
    audio = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["b", 16, 1])
    graph = helper.make_graph([helper.make_node("Identity", ["z"], ["audio"])], "g", [z, pitch], [audio])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(proto, meta)
    onnx.save(proto, str(tmp_path / "rank.onnx"))
    with pytest.raises(ModelError, match="'z' must be float of rank 2") as e:
        NoteModel(tmp_path / "rank.onnx")
    _one_line(e)


def test_refuses_missing_metadata(tiny_model, tmp_path):
    def drop(p):
        keep = [m for m in p.metadata_props if m.key not in ("sample_rate", "z_dim")]
        del p.metadata_props[:]
        p.metadata_props.extend(keep)
    bad = _rewrite(tiny_model, tmp_path / "meta.onnx", drop)
    with pytest.raises(ModelError, match="lacks metadata sample_rate, z_dim") as e:
        NoteModel(bad)
    _one_line(e)


def test_refuses_latent_size_disagreeing_with_metadata(tiny_model, tmp_path):
    def lie(p):
        for m in p.metadata_props:
            if m.key == "z_dim":
                m.value = json.dumps(32)
    bad = _rewrite(tiny_model, tmp_path / "zdim.onnx", lie)
    with pytest.raises(ModelError, match="'z' has 16 dimensions but its metadata says 32"):
        NoteModel(bad)


def test_refuses_truncated_and_missing_files(tiny_model, tmp_path):
    data = tiny_model.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match="not a readable ONNX model") as e:
        NoteModel(tmp_path / "cut.onnx")
    _one_line(e)
    with pytest.raises(ModelError, match="not found"):
        NoteModel(tmp_path / "nothing.onnx")


def test_provider_choice():
    assert choose_providers(["CPUExecutionProvider", "CUDAExecutionProvider"]) == ["CUDAExecutionProvider",
                                                                                   "CPUExecutionProvider"]
    assert choose_providers(["CPUExecutionProvider"], "cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ModelError, match="'cuda' is not available"):
        choose_providers(["CPUExecutionProvider"], "cuda")
