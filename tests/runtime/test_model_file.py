"""The window reads a model's metadata from the file's bytes, without an onnxruntime session: the same facts as
the session gives, and one line for a file that is not a model."""
import pytest

from synth.runtime.model import DEFAULT_MODEL, ModelError, NoteModel
from synth.runtime.model_file import ModelFile, read_metadata


@pytest.mark.parametrize("which", ["shipped", "tone"])
def test_the_metadata_read_from_the_bytes_is_what_onnxruntime_reads(which, tone_model):
    path = DEFAULT_MODEL if which == "shipped" else tone_model
    loaded = NoteModel(path, provider="cpu")
    assert read_metadata(path) == loaded.session.get_modelmeta().custom_metadata_map
    assert ModelFile.read(path).info == loaded.info


def test_a_file_that_is_not_a_model_is_one_line(tmp_path, tone_model):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(tone_model.read_bytes()[:5000])  # a download that stopped
    text = tmp_path / "notes.onnx"
    text.write_text("these are my notes, not a model\n" * 20)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for path in (cut, text, empty):
        with pytest.raises(ModelError, match=f"model file {path} is not a readable ONNX model|lacks metadata"):
            ModelFile.read(path)
    with pytest.raises(ModelError, match="not found"):
        ModelFile.read(tmp_path / "missing.onnx")
