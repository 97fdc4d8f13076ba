"""Small files written whole: the temp file never stays, the permissions are those open() would give."""
import os

import pytest

from synth.core.files import write_atomic


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
