"""``spatialrl._fs``: a finished directory replaces the old one whole; files are written whole."""

import os

import pytest

from spatialrl._fs import replace_dir, write_text_atomic


def test_replace_dir_swaps_in_the_new_directory_and_clears_a_stale_old_one(tmp_path):
    final, tmp = tmp_path / "out", tmp_path / ".out.partial"
    final.mkdir()
    (final / "old.txt").write_text("old")
    stale = tmp_path / ".out.old"  # left by a crash between the two renames
    stale.mkdir()
    tmp.mkdir()
    (tmp / "new.txt").write_text("new")
    replace_dir(tmp, final)
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert not tmp.exists() and not stale.exists()


def test_replace_dir_into_a_new_place(tmp_path):
    tmp = tmp_path / ".out.partial"
    tmp.mkdir()
    (tmp / "a").write_text("1")
    replace_dir(tmp, tmp_path / "out")
    assert (tmp_path / "out" / "a").read_text() == "1"


def test_write_text_atomic_creates_the_directory_and_leaves_no_temporary(tmp_path):
    path = write_text_atomic(tmp_path / "new" / "a.json", "{}\n")
    assert path.read_text() == "{}\n" and os.listdir(path.parent) == ["a.json"]


def test_write_text_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(path, "\udc80")  # a lone surrogate cannot be encoded: the write fails midway
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
