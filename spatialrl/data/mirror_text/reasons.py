"""Why a row is left out of the mirrored dataset, and what malformed input is.

Every row that ``spatialrl data mirror`` does not keep is counted under exactly one key of
:data:`REASONS` (in ``mirror_report.json``, ``skipped.jsonl`` and the dataset card): the rules
raise :class:`Skip` with that key. :class:`MirrorInputError` is malformed input: an error, or a
``bad_row`` skip with ``--skip-bad-rows``.
"""

from __future__ import annotations

__all__ = ["REASONS", "MirrorInputError", "Skip"]


REASONS = {
    "text_reading": "asks to read text (signs, labels, writing): the flipped image shows mirrored text",
    "clock_reading": "asks for the time on a clock face: the flipped face is not a valid clock",
    "compass_direction": "east/west words: whether they follow the image's x axis is unknown",
    "nautical_side": "port/starboard: tied to the vessel, not to the view, and easily misread",
    "left_not_direction": "'left' means remaining or is the verb to leave",
    "right_not_direction": "'right' means correct",
    "ambiguous_left_right": "a left/right word the rules cannot classify with certainty",
    "invalid_box": "a box with x2 < x1 or y2 < y1 (or negative width/height)",
    "box_out_of_bounds": "coordinates outside the image (or outside [0,1] / [0,1000])",
    "box_looks_normalised": "pixel coordinates requested but all values are fractions in [0,1]",
    "ambiguous_box_coordinates": "--coords auto cannot tell pixel from 0-1000 coordinates",
    "unsupported_coordinates": "a bracketed number list that is neither a box nor a point",
    "no_image_size": "coordinates in the text but no image size to flip them with",
    "unsupported_value": "a field value of a type the rules do not handle",
    "multiple_images": "more than one image in the row",
    "animated_image": "an animated (multi-frame) image",
    "bad_row": "malformed input row (only with --skip-bad-rows; otherwise it is an error)",
}


class Skip(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        assert reason in REASONS, reason
        self.reason = reason
        self.detail = detail


class MirrorInputError(ValueError):
    """Bad input; the message names the file, the line or row, and the field."""
