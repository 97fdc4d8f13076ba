"""Small files written whole: the temp file never stays, the permissions are those open() would give."""
import os

import pytest

from synth.core.files import replacing, write_atomic


def test_a_written_file_is_whole_readable_by_others_and_leaves_no_temp_file(tmp_path):
    path = write_atomic(tmp_path / "preset.json", '{"name": "Keys"}\n')
    with open(tmp_path / "plain", "w"):  # what open() makes under this process's umask
        pass
    assert path.read_text() == '{"name": "Keys"}\n'
    assert path.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 != 0o600
    (tmp_path / "plain").unlink()
    write_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01" and os.listdir(tmp_path) == ["preset.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = write_atomic(tmp_path / "session.json", "old")
    with pytest.raises(TypeError):
        write_atomic(path, 12345)  # not text or bytes: fails while writing
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["session.json"]


def test_a_writer_given_a_name_replaces_the_file_only_when_its_block_ends(tmp_path):
    path = write_atomic(tmp_path / "checkpoint.pt", b"old")
    with replacing(path) as tmp:
        tmp.write_bytes(b"new")
        assert path.read_bytes() == b"old"  # not yet: a reader still sees the whole old file
        assert tmp.parent == tmp_path and tmp.name.startswith(".checkpoint.pt.") and tmp.suffix == ".part"
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["checkpoint.pt"]
    with pytest.raises(RuntimeError, match="writer failed"):
        with replacing(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["checkpoint.pt"]
