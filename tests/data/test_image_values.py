"""spatialrl.data.image_values: every form of an image value, and paths that leave the root."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from spatialrl.data.image_values import ImageValueError, read_image_value


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (9, 8, 7)).save(buf, format="PNG")
    return buf.getvalue()


def test_every_form_reads_to_the_same_bytes(tmp_path):
    data = png()
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(data)
    b64 = base64.b64encode(data).decode()
    forms = ["img/a.png", str(tmp_path / "img" / "a.png"), f"data:image/png;base64,{b64}", data,
             {"bytes": data, "path": None}, {"bytes": b64, "path": "a.png"}, {"bytes": None, "path": "img/a.png"}]
    for value in forms:
        assert read_image_value(value, tmp_path)[0] == data, value
    assert read_image_value("img/a.png", tmp_path)[1] == "a.png"
    decoded = read_image_value(Image.open(io.BytesIO(data)), tmp_path)[0]
    assert Image.open(io.BytesIO(decoded)).size == (4, 3)


@pytest.mark.parametrize("value, kind, message", [
    ("../outside.png", "outside_root", "outside the data root"),
    ("link/b.png", "outside_root", "outside the data root"),
    ("nope.png", "missing", "not found"),
    ("data:image/png;base64,***", "malformed", "malformed data: URI"),
    ({"bytes": "***"}, "malformed", "not valid base64"),
    ({"bytes": None, "path": None}, "malformed", "neither bytes nor path"),
    (12, "malformed", "expected an image path"),
])
def test_bad_values_say_why(tmp_path, value, kind, message):
    root = tmp_path / "root"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "b.png").write_bytes(png())
    (tmp_path / "outside.png").write_bytes(png())
    (root / "link").symlink_to(elsewhere)  # a symlink out of the root
    with pytest.raises(ImageValueError, match=message) as e:
        read_image_value(value, root)
    assert e.value.kind == kind


def test_absolute_paths_refused_when_asked(tmp_path):
    (tmp_path / "a.png").write_bytes(png())
    with pytest.raises(ImageValueError, match="absolute") as e:
        read_image_value(str(tmp_path / "a.png"), tmp_path, allow_absolute=False)
    assert e.value.kind == "outside_root"
