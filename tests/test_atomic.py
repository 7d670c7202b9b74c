import os

import pytest

from liwi.atomic import write_atomic


def test_write_creates_folders_and_leaves_only_the_file(tmp_path):
    target = tmp_path / "a" / "b" / "x.bin"
    assert write_atomic(target, b"hello") == target
    assert target.read_bytes() == b"hello"
    assert os.listdir(target.parent) == ["x.bin"]


def test_a_refused_check_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "w.onnx"
    target.write_bytes(b"old")
    seen = []

    def refuse(tmp):
        seen.append(tmp.read_bytes())  # the check reads the complete new content
        raise ValueError("sha256 mismatch")

    with pytest.raises(ValueError, match="sha256"):
        write_atomic(target, b"new", refuse)
    assert seen == [b"new"]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["w.onnx"]


def test_a_failed_write_removes_its_temporary(tmp_path, monkeypatch):
    target = tmp_path / "t.pt"

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b"data")
    assert os.listdir(tmp_path) == []
