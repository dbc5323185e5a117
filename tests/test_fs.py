"""``spatialrl._fs.replace_dir``: a finished directory replaces the old one whole."""

from spatialrl._fs import replace_dir


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
