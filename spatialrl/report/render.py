"""Rendering the report's sections (``document.py``) with the jinja2 templates in ``templates/``.

``report.html.jinja`` is autoescaped; ``report.md.jinja`` is not (Markdown). The filters the
templates use: ``inline`` (escape a block's text for HTML, then render its `code` and
**bold** spans), ``md_cell`` (a Markdown table cell: ``|`` escaped, one line), ``base64`` and
``png_size`` (a figure embedded as a data URI with its pixel size) and ``pyrepr`` (an exact
number for ``data-value``).
"""

from __future__ import annotations

import base64
import functools
import html
import re
import struct

from spatialrl._extras import requires_extra

with requires_extra("train"):
    import jinja2
    from markupsafe import Markup

from spatialrl.report.document import Section

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def inline_html(text: str) -> Markup:
    """``text`` escaped for HTML, with its `code` and **bold** spans as ``<code>`` and ``<strong>``."""
    out = html.escape(text, quote=False)
    out = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", out)
    return Markup(_BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", out))


def md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    return struct.unpack(">II", png[16:24])


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("spatialrl.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.jinja",), default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(inline=inline_html, md_cell=md_cell, png_size=png_size, pyrepr=repr,
                       base64=lambda data: base64.b64encode(data).decode("ascii"))
    return env


def render_html(title: str, generated: str, sections: list[Section]) -> str:
    return environment().get_template("report.html.jinja").render(title=title, generated=generated, sections=sections)


def render_markdown(title: str, generated: str, sections: list[Section], files_dir: str) -> str:
    text = environment().get_template("report.md.jinja").render(
        title=title, generated=generated, sections=sections, files_dir=files_dir)
    return text.rstrip() + "\n"
