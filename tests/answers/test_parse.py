"""Tests for spatialrl.answers: tables per function, adversarial inputs, property tests."""

from __future__ import annotations

import doctest
import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spatialrl.answers as answers
from spatialrl.answers import (
    extract_answer,
    parse_bbox,
    parse_choice,
    parse_quantity,
    parse_yes_no,
)

FT = 0.3048
IN = 0.0254
YD = 0.9144


pytestmark = pytest.mark.usefixtures("surface_parser_errors")


def test_docstring_examples():
    result = doctest.testmod(answers, raise_on_error=False, verbose=False)
    assert result.attempted > 20
    assert result.failed == 0


# --------------------------------------------------------------------------------------
# extract_answer
# --------------------------------------------------------------------------------------

EXTRACT_CASES = [
    ("<answer>2.5 m</answer>", "2.5 m"),
    ("<think>hmm</think><answer>  B \n</answer>", "B"),
    ("<answer>1</answer> text <answer>2</answer>", None),
    ("<think><answer>1</answer></think><answer>2</answer>", None),
    ("<think>x</think><answer>2</answer><think><answer>3</answer></think>", None),
    ("<ANSWER>yes</ANSWER>", "yes"),
    ("<Answer>no</aNsWeR>", "no"),
    ("< answer >3</ answer >", "3"),
    ("<answer>\nmulti\nline\n</answer>", "multi\nline"),
    ("<ANSWER>1</ANSWER> <answer>2</answer> <Answer>3</Answer>", None),
    ("<answer>1</answer> <ANSWER>2</ANSWER>", None),
    ("no tags at all", None),
    ("<answer>2 m", None),
    ("2 m</answer>", None),
    ("<answer>1</answer> <answer>2", None),
    ("<answer></answer>", None),
    ("<answer>   </answer>", None),
    ("<answer><answer>2</answer></answer>", None),
    ("<answer>1</answer>2</answer>", None),
    ("", None),
    (None, None),
    (42, None),
    (b"<answer>2</answer>", None),
    ("<answer>A <answer>B</answer>", None),  # an unclosed block, then a closed one
    ("<answer>B</answer><answer>", None),
    ("<answer>\u200b\ufeff\u2060</answer>", None),  # invisible only
    ("<answer>\u2800</answer>", None),  # braille blank
    ("<answer>C</answer> The answer is D.", None),  # words after the answer: it is not the final word
    ("<answer>C</answer><think>no, D</think>", None),
    ("<answer>C</answer><answer/>", None),
    ("<answer>C</answer>.\n", "C"),  # punctuation and whitespace are fine
    ("<answer>C</answer><|im_end|>", "C"),  # so is an end-of-turn token
]


@pytest.mark.parametrize("text,expected", EXTRACT_CASES)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


# --------------------------------------------------------------------------------------
# parse_quantity
# --------------------------------------------------------------------------------------

LENGTH_CASES = [
    ("1/2 m", 0.5),  # a fraction of whole numbers is a number literal
    ("3 1/2 m", 3.5),
    ("3 and 1/2 m", 3.5),
    ("7/2 m", 3.5),
    ("1\u20442 m", 0.5),  # fraction slash
    (r"$\frac{7}{2}$ m", 3.5),
    (r"$3\frac{1}{2}$ m", 3.5),
    ("three quarters of a meter", 0.75),
    ("two and two-fifths meters", 2.4),
    ("15 m.", 15.0),
    # plain numbers and units
    ("2.5 m", 2.5),
    ("2.5m", 2.5),
    ("2.5 m.", 2.5),
    ("about 2.5 m", 2.5),
    ("~2.5 m", 2.5),
    ("2", 2.0),
    (".5 m", 0.5),
    ("150 cm", 1.5),
    ("150 centimeters", 1.5),
    ("150 centimetres", 1.5),
    ("1200 mm", 1.2),
    ("1,200 mm", 1.2),
    ("1,200.5 mm", 1.2005),
    ("3 km", 3000.0),
    ("3 kilometers", 3000.0),
    ("2 ft", 2 * FT),
    ("2 feet", 2 * FT),
    ("1 foot", FT),
    ("10 in", 10 * IN),
    ("10 inches", 10 * IN),
    ("1 inch", IN),
    ("3 yd", 3 * YD),
    ("3 yards", 3 * YD),
    ("2 meters", 2.0),
    ("2 metres", 2.0),
    ("1 meter", 1.0),
    ("2 M", 2.0),
    ("2 FT", 2 * FT),
    ("2e-3 m", 0.002),
    ("1 mile", 1609.344),
    ("0 m", 0.0),
    ("2 meters away from the chair", 2.0),
    ("The distance is 2.5 meters.", 2.5),
    ("2 in", 2 * IN),
    ("2 in the box", 2.0),  # `in` before an ordinary word is the preposition: a bare 2 (meters)
    ('the answer is "2"', 2.0),  # a quoted number, not 2 inches
    ("**2.5 m**", 2.5),
    ("d = 2.5 m", 2.5),
    ("2-foot", 2 * FT),
    ("10-meter", 10.0),
    ("3 parsecs", 3 * 3.0856775814671916e16),
    # compound forms
    ("5 ft 6 in", 5 * FT + 6 * IN),
    ("5'6\"", 5 * FT + 6 * IN),
    ("5' 6\"", 5 * FT + 6 * IN),
    ("5'6", 5 * FT + 6 * IN),
    ("5 feet 6 inches", 5 * FT + 6 * IN),
    ("5 feet and 6 inches", 5 * FT + 6 * IN),
    ("5 ft 6 in tall", 5 * FT + 6 * IN),
    ("5\u20326\u2033", 5 * FT + 6 * IN),  # primes
    ("1 m 20 cm", 1.2),
    ("6'", 6 * FT),
    ('6"', 6 * IN),
    # number words
    ("two meters", 2.0),
    ("twelve feet", 12 * FT),
    ("twenty-one inches", 21 * IN),
    ("twenty one inches", 21 * IN),
    ("a hundred cm", 1.0),
    ("one hundred and fifty centimeters", 1.5),
    ("two thousand mm", 2.0),
    ("zero", 0.0),
    # ranges
    # repetition / restatement
    ("2 m (2 meters)", 2.0),
    ("about 2 m, so 2 m", 2.0),
    ("2 m (200 cm)", 2.0),
    ("2.5 m (8.2 ft)", 2.5),  # a rounded conversion (CONVERSION_TOL)
    ("3 (three) meters", 3.0),
    # Q-Spatial-Bench format
    (r"\scalar{3.5} \distance_unit{feet}", 3.5 * FT),
    (r"\scalar{1} \distance_unit{meter}", 1.0),
    (r"\scalar{40} \distance_unit{centimeters}", 0.4),
    (r"\scalar{12} \distance_unit{inches}", 12 * IN),
    (r"\scalar{2} \distance_unit{yards}", 2 * YD),
    (r"\scalar{2} \distance_unit{meters}", 2.0),
    (r"long reasoning 7 m, 9 ft... so \scalar{3} \distance_unit{ft}", 3 * FT),
    (r"\\scalar{1} \\distance_unit{meter}", 1.0),  # JSON-escaped backslashes
    (r"\scalar{2}", 2.0),
    # LaTeX and unicode
    (r"$2.5\,\text{m}$", 2.5),
    (r"2.5 \mathrm{cm}", 0.025),
    ("\uff12\uff0e\uff15\uff4d", 2.5),  # full-width "２．５ｍ"
    ("\u0663 m", 3.0),  # Arabic-Indic three
    ("\u0968 m", 2.0),  # Devanagari two
    ("2\u200b m", 2.0),  # zero-width space
    ("\ufeff2 m", 2.0),  # BOM
    ("2\u00a0m", 2.0),  # no-break space
    ("3 \u339d", 0.03),  # "㎝" square-unit compatibility character
]

LENGTH_NONE = [
    "",
    "   ",
    "no number here",
    "meters",
    "2 or 3 meters",
    "two or three meters",
    "either 2 m or 4 m",
    "2 m, no wait 3 m",
    "2 m or 3 m",
    "2,5 m",  # European decimal comma is two numbers
    "1,2345 m",
    "3 bananas",
    "3 s",
    "3 seconds",
    "2 m/s",
    "50%",
    "3 m^2",
    "3 m²",
    "3 square meters",
    "3 cubic meters",
    "-3 m",
    "\u22123 m",  # minus sign
    "(-3 m)",
    "nan m",
    "inf m",
    "1e309 m",
    "1e400 m",
    "1" * 400 + " m",
    "between 1 and 100 meters",
    # the reward policy: a range, several Q-Spatial scalars that differ, are not one value
    "approximately 1.5 to 2 meters",
    "2-3 m",
    "2 - 3 m",
    "2\u20133 m",  # en dash
    "2 to 3 meters",
    "from 2 to 3 meters",
    "between 2 and 3 m",
    "between two and three meters",
    "2 m - 3 m",
    "2 m to 3",
    "150-200 cm",
    r"\scalar{2-3} \distance_unit{meters}",
    r"\scalar{1} \distance_unit{m} then \scalar{2} \distance_unit{m}",
    "1-10 m",
    "3-2 m",
    "0-1 m",
    "2 \u00b1 0.5 m",
    "2 x 3 m",
    "two three meters",
    "the one on the left is 2 m",
    "2 m 3",
    r"\scalar{nan} \distance_unit{m}",
    r"\scalar{inf} \distance_unit{m}",
    r"\scalar{-2} \distance_unit{m}",
    r"\scalar{2} \distance_unit{bananas}",
    r"\scalar{} \distance_unit{m}",
    r"\scalar{1 or 2} \distance_unit{m}",
    "eval('2+2') m",
    "2+2 m",
    "2*2 m",
    "2^2 m",
    "10^3 mm",
    "2 \u00d7 2 m",
    "__import__('os').system('x') 2 m 3 m",
]

AREA_CASES = [
    ("15 m\u00b2.", 15.0),  # a sentence's full stop after the exponent
    ("The area is 15 m^2.", 15.0),
    ("12 m^2", 12.0),
    ("12 m2", 12.0),
    ("12 m\u00b2", 12.0),
    ("12 m**2", 12.0),
    ("12 m^{2}", 12.0),
    ("12 square meters", 12.0),
    ("12 square metres", 12.0),
    ("12 meters squared", 12.0),
    ("12 sq m", 12.0),
    ("12 sq. m", 12.0),
    ("12 sqm", 12.0),
    ("6 sq ft", 6 * FT**2),
    ("6 sqft", 6 * FT**2),
    ("6 square feet", 6 * FT**2),
    ("6 ft\u00b2", 6 * FT**2),
    ("6 ft^2", 6 * FT**2),
    ("100 cm^2", 0.01),
    ("1 acre", 4046.8726098742513),
    ("1 hectare", 10000.0),
    ("12", 12.0),
    ("12 \u33a1", 12.0),  # "㎡"
]

AREA_NONE = ["3 m", "3 meters", "3 ft", "5 ft 6 in", "3 m^3", "3 cubic feet", "3 m by 4 m", "3 bananas", "-12 m^2"]

COUNT_CASES = [
    ("3", 3.0),
    ("3 chairs", 3.0),
    ("There are 3 chairs.", 3.0),
    ("three", 3.0),
    ("Three chairs", 3.0),
    ("twelve", 12.0),
    ("twenty-one", 21.0),
    ("one hundred and five", 105.0),
    ("3.0", 3.0),
    ("1,000", 1000.0),
    ("0", 0.0),
    ("3 (three)", 3.0),
    ("3 in total", 3.0),
    ("3 stones", 3.0),
    ("\uff13", 3.0),
    ("none", 0.0),
    ("None.", 0.0),
    ("0 (none)", 0.0),
    ("There are no chairs, not even one.", 0.0),
    ("I don't see any chairs.", 0.0),
    ("There are 2 chairs, not one", 2.0),
    ("There are no chairs.", 0.0),
    ("zero", 0.0),
]

COUNT_NONE = ["2.5", "3 m", "3 feet", "3 cups", "3 chairs and 2 tables", "2 or 3", "2-3", "-2", "", "1e400", "none of them", "no idea"]


@pytest.mark.parametrize("text,expected", LENGTH_CASES)
def test_parse_quantity_length(text, expected):
    assert parse_quantity(text) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("text", LENGTH_NONE)
def test_parse_quantity_length_rejects(text):
    assert parse_quantity(text) is None


@pytest.mark.parametrize("text,expected", AREA_CASES)
def test_parse_quantity_area(text, expected):
    assert parse_quantity(text, dimension="area") == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("text", AREA_NONE)
def test_parse_quantity_area_rejects(text):
    assert parse_quantity(text, dimension="area") is None


@pytest.mark.parametrize("text,expected", COUNT_CASES)
def test_parse_quantity_count(text, expected):
    assert parse_quantity(text, dimension="count") == expected


@pytest.mark.parametrize("text", COUNT_NONE)
def test_parse_quantity_count_rejects(text):
    assert parse_quantity(text, dimension="count") is None


@pytest.mark.parametrize(
    "text,dimension,default_unit,expected",
    [
        ("40", "length", "cm", 0.4),
        ("40", "length", "centimeters", 0.4),
        ("3", "length", "ft", 3 * FT),
        ("3", "length", "'", 3 * FT),
        ("3 m", "length", "cm", 3.0),  # an explicit unit wins
        ("2", "area", "m", 2.0),  # a length default means its square for area
        ("2", "area", "m^2", 2.0),
        ("2", "area", "sq ft", 2 * FT**2),
        ("2", "area", "ft\u00b2", 2 * FT**2),
        ("3", "count", "m", 3.0),  # ignored for counts
        (r"\scalar{3}", "length", "ft", 3 * FT),
    ],
)
def test_parse_quantity_default_unit(text, dimension, default_unit, expected):
    assert parse_quantity(text, dimension, default_unit) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "dimension,default_unit",
    [("volume", None), ("length", "bananas"), ("length", "m^2"), ("area", "s"), ("length", 3), ("length", "2 m")],
)
def test_parse_quantity_bad_arguments_raise(dimension, default_unit):
    with pytest.raises(ValueError):
        parse_quantity("2", dimension, default_unit)


def test_parse_quantity_non_str():
    for bad in (None, 2.5, 3, b"2 m", ["2 m"], object()):
        assert parse_quantity(bad) is None


def test_pint_is_consulted_once_per_unit_word():
    parse_quantity("2.5 furlongs")
    before = answers._word_unit.cache_info()
    for text in ["2.5 furlongs", "3 furlongs", "about 4 furlongs", "1-1.5 furlongs"]:
        parse_quantity(text)
    after = answers._word_unit.cache_info()
    assert after.misses == before.misses


def test_parse_quantity_fast_path_matches_general_path():
    texts = ["2.5 m", "3 ft", "about 4 in", "7 cm.", "1 yd", "12 meters", "2 s", "3 sqm", "4 to", "5 e", "6 sq"]
    for text in texts:
        for dim in ("length", "area"):
            general = answers._quantity_from_text(text, dim, 1.0)
            assert parse_quantity(text, dim) == general, (text, dim)


# --------------------------------------------------------------------------------------
# parse_choice
# --------------------------------------------------------------------------------------

O4 = ["chair", "table", "lamp", "sofa"]
LR = ["left", "right"]

CHOICE_CASES = [
    ("A is closer", LR, 0),  # "A" before a verb said of it is the letter, not the article
    ("A is correct.", O4, 0),
    ("B", O4, 1),
    ("b", O4, 1),
    ("(B)", O4, 1),
    ("B.", O4, 1),
    ("B)", O4, 1),
    ("[B]", O4, 1),
    ("**B**", O4, 1),
    ("Option B", O4, 1),
    ("option b", O4, 1),
    ("Option (C)", O4, 2),
    ("choice: D", O4, 3),
    ("the answer is B", O4, 1),
    ("The answer is b.", O4, 1),
    ("The correct answer is (C).", O4, 2),
    ("Answer: B", O4, 1),
    ("Final answer: C", O4, 2),
    ("answer is option d", O4, 3),
    ("The answer is A", LR, 0),
    ("Option A is closer", LR, 0),
    ("B. table", O4, 1),
    ("B) table", O4, 1),
    ("a) chair", O4, 0),
    ("B because it is closer", LR, 1),
    ("(B) ... so B.", O4, 1),
    ("the table", O4, 1),
    ("The Table.", O4, 1),
    ("table", O4, 1),
    ("I think it is the lamp", O4, 2),
    ("e.g. the lamp", O4, 2),
    ("my choice is a lamp", O4, 2),
    ("The answer is a chair", O4, 0),
    ("the red chair", ["chair", "red chair"], 1),
    ("the chair", ["chair", "red chair"], 0),
    ("2", [1, 2, 3], 1),
    ("right", ("left", "right"), 1),
    ("table", ["A. chair", "B. table"], 1),
    ("B. right, not left", LR, 1),
    ("\uff22", O4, 1),  # full-width B
    ("B\u200b", O4, 1),
]

CHOICE_NONE = [
    ("A chair is closer", LR),
    ("I think so", O4),
    ("A or B", O4),
    ("A, B", O4),
    ("A and C", O4),
    ("A/B", O4),
    ("(A) or (B)", O4),
    ("A, B, C, D", O4),
    ("ABCD", O4),
    ("A or B or C", O4),
    ("all of the above", O4),
    ("none of the above", O4),
    ("E", O4),
    ("(E)", O4),
    ("Option F", O4),
    ("A. table", O4),
    ("not B", O4),
    ("not (B)", O4),
    ("the chair and the table", O4),
    ("chair or table", O4),
    ("", O4),
    ("nothing relevant", O4),
    ("options A and B are both wrong", O4),
    ("B", []),
    ("B", None),
    ("B", "ab"),
    ("B", 5),
    (None, O4),
    (3, O4),
]


@pytest.mark.parametrize("text,options,expected", CHOICE_CASES)
def test_parse_choice(text, options, expected):
    assert parse_choice(text, options) == expected


@pytest.mark.parametrize("text,options", CHOICE_NONE)
def test_parse_choice_rejects(text, options):
    assert parse_choice(text, options) is None


def test_parse_choice_article_never_option_a():
    options = ["north", "south", "east", "west"]
    for text in ["A chair is on the left side", "Answer: A chair", "the answer is a cup", "a lamp"]:
        assert parse_choice(text, options) != 0


# --------------------------------------------------------------------------------------
# parse_yes_no
# --------------------------------------------------------------------------------------

YES_NO_CASES = [
    ("Yes", True),
    ("yes", True),
    ("Yes, it is.", True),
    ("YES!", True),
    ("True", True),
    ("Yep", True),
    ("The answer is yes.", True),
    ("No", False),
    ("No.", False),
    ("no, it is not", False),
    ("False", False),
    ("nope", False),
    ("There is no chair", False),
    ("\uff59\uff45\uff53", True),  # full-width
    ("ye\u200bs", True),
    ("yes yes", True),
    ("yes and no", None),
    ("Yes/No", None),
    ("yes or no", None),
    ("not yes", None),
    ("isn't true", None),
    ("not true", None),
    ("I don't know", None),
    ("maybe", None),
    ("eyes", None),
    ("nobody", None),
    ("", None),
    (None, None),
    (1, None),
]


@pytest.mark.parametrize("text,expected", YES_NO_CASES)
def test_parse_yes_no(text, expected):
    assert parse_yes_no(text) is expected


# --------------------------------------------------------------------------------------
# parse_bbox
# --------------------------------------------------------------------------------------

BBOX_CASES = [
    ("1, 2, 3, 4", (1.0, 2.0, 3.0, 4.0)),  # an answer that is just the four numbers
    ("[10, 20, 30, 40]", (10.0, 20.0, 30.0, 40.0)),
    ("[10.5,20.25,30,40]", (10.5, 20.25, 30.0, 40.0)),
    ("(10, 20, 30, 40)", (10.0, 20.0, 30.0, 40.0)),
    ("[10 20 30 40]", (10.0, 20.0, 30.0, 40.0)),
    ("(10,20),(30,40)", (10.0, 20.0, 30.0, 40.0)),
    ("<|box_start|>(10,20),(30,40)<|box_end|>", (10.0, 20.0, 30.0, 40.0)),
    ('{"bbox_2d": [1, 2, 3, 4], "label": "chair"}', (1.0, 2.0, 3.0, 4.0)),
    ("[[1, 2, 3, 4]]", (1.0, 2.0, 3.0, 4.0)),
    ("The box is [1,2,3,4].", (1.0, 2.0, 3.0, 4.0)),
    ("[1,2,3,4] and again [1,2,3,4]", (1.0, 2.0, 3.0, 4.0)),
    ("[-1, -2, 3, 4]", (-1.0, -2.0, 3.0, 4.0)),
    ("[1,1,1,1]", (1.0, 1.0, 1.0, 1.0)),
    ("[1e1, 2, 30, 40]", (10.0, 2.0, 30.0, 40.0)),
    ("\uff3b1, 2, 3, 4\uff3d", (1.0, 2.0, 3.0, 4.0)),  # full-width brackets
    ("[0.1, 0.2, 0.3, 0.4]", (0.1, 0.2, 0.3, 0.4)),
]

BBOX_NONE = [
    "[30, 20, 10, 40]",
    "[10, 40, 30, 20]",
    "[0,0,1,1] or [2,2,3,3]",
    "[[0,0,1,1],[2,2,3,3]]",
    "[1, 2, 3]",
    "[1, 2, 3, 4, 5]",
    "[nan, 0, 1, 1]",
    "[inf, 0, 1, 1]",
    "[1e400, 0, 1e401, 1]",
    "[a, b, c, d]",
    "[1, 2, 3, 4)",
    "",
    "no box",
]


@pytest.mark.parametrize("text,expected", BBOX_CASES)
def test_parse_bbox(text, expected):
    assert parse_bbox(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", BBOX_NONE)
def test_parse_bbox_rejects(text):
    assert parse_bbox(text) is None


def test_parse_bbox_non_str():
    assert parse_bbox(None) is None
    assert parse_bbox([1, 2, 3, 4]) is None


# --------------------------------------------------------------------------------------
# Adversarial table: reward-hacking attempts and tricky formats (function, input, expected)
# --------------------------------------------------------------------------------------


def _q(text):
    return parse_quantity(text)


def _qa(text):
    return parse_quantity(text, "area")


def _qc(text):
    return parse_quantity(text, "count")


def _c4(text):
    return parse_choice(text, O4)


def _ext_q(text):
    return parse_quantity(extract_answer(text))


LONG = "x" * 100_000

ADVERSARIAL = [
    # choice hedging
    (_c4, "A or B or C", None),
    (_c4, "ABCD", None),
    (_c4, "A, B, C, D", None),
    (_c4, "A B C D", None),
    (_c4, "(A)(B)(C)(D)", None),
    (_c4, "all of the above", None),
    (_c4, "The answer is A or B", None),
    (_c4, "Answer: A. Answer: B.", None),
    (_c4, "A\u200bB", None),
    (_c4, "chair table lamp sofa", None),
    (_c4, "B" * 50, None),
    (_c4, "Option E", None),
    (_c4, "eval('B')", None),
    (_c4, "B " + LONG, None),  # over the length cap
    (_c4, "It is definitely (B).", 1),
    # numeric hedging
    (_q, "2 or 3 m", None),
    (_q, "2 m or maybe 3 m", None),
    (_q, "between 1 and 100 meters", None),
    (_q, "between 2 and 3 meters", None),
    (_q, "1-1000 m", None),
    (_q, "0 to 1e9 m", None),
    (_q, "2 m, 3 m, 4 m", None),
    (_q, "1 2 3 4 5 m", None),
    (_q, "2 m \u00b1 1 m", None),
    (_q, "\\scalar{nan} \\distance_unit{meters}", None),
    (_q, "\\scalar{1e999} \\distance_unit{meters}", None),
    (_q, "\\scalar{1,2,3} \\distance_unit{meters}", None),
    (_q, "1e400 m", None),
    (_q, "-3 m", None),
    (_q, "- - 3 m", 3.0),  # bullets, not minus signs
    (_q, "NaN", None),
    (_q, "Infinity", None),
    (_q, "0x10 m", None),
    (_q, "eval('2+2') m", None),
    (_q, "2+2 m", None),  # arithmetic is rejected, never evaluated
    (_q, "eval('2') m", None),  # code is not an answer
    (_q, "__import__('os') 2 m", 2.0),  # text is never executed; one quantity remains
    (_q, "\u0662.\u0665 m", 2.5),  # Arabic-Indic digits
    (_q, "\uff12 \uff4d", 2.0),  # full-width
    (_q, "2\u200b\u200b m", 2.0),
    (_q, "2" + " " * 5000 + "m", None),  # over the length cap
    (_q, "2 m" + " 2 m" * 1000, None),  # over the length cap
    (_q, "1" * 2000, None),  # a finite but huge number? 1e1999 overflows
    (_qa, "3 m", None),
    (_qa, "3 m x 4 m = 12 m^2", None),
    (_qc, "2.5", None),
    (_qc, "3 or 4", None),
    (_qc, "3 m", None),
    # tags
    (_ext_q, "<answer>1 m</answer><answer>2 m</answer>", None),
    (_ext_q, "<think><answer>1 m</answer></think><answer>2 m</answer>", None),
    (_ext_q, "<answer>1 m</answer><answer>2 m", None),
    (_ext_q, "<answer>2 m</answer>" + LONG, None),  # words after the answer: not the final word
    (_ext_q, LONG + "<answer>2 m</answer>", 2.0),
    (_ext_q, "<answer>" + LONG + "</answer>", None),
    (_ext_q, "<answer><answer>2 m</answer></answer>", None),
    # yes/no
    (parse_yes_no, "yes and no", None),
    (parse_yes_no, "Yes. No.", None),
    (parse_yes_no, "not no", None),
    (parse_yes_no, "YESNO", None),
    (parse_yes_no, "y e s", None),
    # boxes
    (parse_bbox, "[0,0,1,1] or [2,2,3,3]", None),
    (parse_bbox, "[0,0,1e309,1]", None),
    (parse_bbox, "[0,0,1,1]" * 300, None),  # over the length cap
    (parse_bbox, "[[0,0,1,1]]", (0.0, 0.0, 1.0, 1.0)),
]


@pytest.mark.parametrize("fn,text,expected", ADVERSARIAL)
def test_adversarial(fn, text, expected):
    got = fn(text)
    if expected is None:
        assert got is None
    elif isinstance(expected, float):
        assert got == pytest.approx(expected)
    else:
        assert got == expected


def test_adversarial_table_is_large():
    assert len(ADVERSARIAL) >= 40


# --------------------------------------------------------------------------------------
# Length limits and speed
# --------------------------------------------------------------------------------------


def _warm_unit_registry():
    parse_quantity("2 m (200 cm), 3 sq ft")  # pint builds its registry once (~2 s); not what we time


def test_huge_inputs_are_fast():
    """A guard against catastrophic regex backtracking (minutes), not a speed target."""
    _warm_unit_registry()
    huge = ("<answer>2 m</answer> [1,2,3,4] yes B 3 m (A) " * 200_000)[:5_000_000]
    start = time.perf_counter()
    extract_answer(huge)
    for fn in (parse_quantity, parse_yes_no, parse_bbox):
        assert fn(huge) is None
    assert parse_choice(huge, O4) is None
    assert time.perf_counter() - start < 2.0


def test_pathological_inputs_stay_fast():
    texts = [
        "1" * 2000,
        "[" * 2000,
        "(1," * 600,
        "one " * 500,
        "twenty-" * 290,
        "<answer>" * 250,
        "A or " * 400,
        "- " * 1000,
        "5'6\"" * 400,
        "\\scalar{" * 200,
    ]
    _warm_unit_registry()
    start = time.perf_counter()
    for t in texts:
        extract_answer(t)
        parse_quantity(t)
        parse_quantity(t, "area")
        parse_quantity(t, "count")
        parse_choice(t, O4)
        parse_yes_no(t)
        parse_bbox(t)
    assert time.perf_counter() - start < 2.0


# --------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_FRAGMENTS = st.sampled_from(
    [
        "0", "1", "2", "3", "12", "2.5", ".5", "1,200", "1e3", "1e400", "nan", "inf", "-", "\u2212", "+",
        " ", "  ", "\n", ",", ".", "/", "(", ")", "[", "]", "{", "}", "'", '"', "\u2032", "\u2033",
        "^2", "**2", "\u00b2", "m", "cm", "mm", "km", "ft", "feet", "in", "inch", "yd", "meters",
        "sq", "square", "cubic", "squared", "to", "and", "or", "between", "from", "about",
        "a", "A", "B", "C", "D", "E", "I", "option", "answer is", "answer:", "not", "n't",
        "yes", "no", "true", "false", "one", "twenty", "-one", "hundred", "thousand", "a hundred",
        "\\scalar{", "\\distance_unit{", "\\text{", "$", "<answer>", "</answer>", "<think>",
        "</think>", "chair", "table", "bananas", "%", "\u200b", "\uff12", "\u0663", "\ufeff", "e",
    ]
)  # fmt: skip
ADVERSARIAL_TEXT = st.lists(_FRAGMENTS, max_size=30).map("".join)
ANY_TEXT = st.one_of(st.text(), ADVERSARIAL_TEXT)


def _check_quantity(x, dimension):
    assert x is None or type(x) is float
    if x is not None:
        assert math.isfinite(x)
        assert x >= 0
        if dimension == "count":
            assert x == math.floor(x)


@PROPERTY_SETTINGS
@given(ANY_TEXT)
def test_property_extract_answer(text):
    out = extract_answer(text)
    assert out is None or (isinstance(out, str) and out == out.strip() and out)
    if out is not None:
        assert out in text


@PROPERTY_SETTINGS
@given(ANY_TEXT, st.sampled_from(["length", "area", "count"]), st.sampled_from([None, "m", "cm", "ft"]))
def test_property_parse_quantity(text, dimension, default_unit):
    _check_quantity(parse_quantity(text, dimension, default_unit), dimension)


@PROPERTY_SETTINGS
@given(ANY_TEXT, st.lists(st.text(max_size=12), max_size=6))
def test_property_parse_choice(text, options):
    out = parse_choice(text, options)
    assert out is None or (type(out) is int and 0 <= out < len(options))


@PROPERTY_SETTINGS
@given(ANY_TEXT)
def test_property_parse_choice_fixed_options(text):
    out = parse_choice(text, O4)
    assert out is None or (type(out) is int and 0 <= out < 4)


@PROPERTY_SETTINGS
@given(ANY_TEXT)
def test_property_parse_yes_no(text):
    assert parse_yes_no(text) in (None, True, False)


@PROPERTY_SETTINGS
@given(st.one_of(ANY_TEXT, st.lists(st.sampled_from(["[", "]", "(", ")", ",", " ", "-", "1", "2.5", "1e400", "nan"]), max_size=30).map("".join)))
def test_property_parse_bbox(text):
    out = parse_bbox(text)
    if out is not None:
        assert type(out) is tuple and len(out) == 4
        assert all(type(v) is float and math.isfinite(v) for v in out)
        assert out[0] <= out[2] and out[1] <= out[3]


@PROPERTY_SETTINGS
@given(st.floats(min_value=0.001, max_value=1e6, allow_nan=False), st.sampled_from(["m", "cm", "mm", "km", "ft", "in", "yd"]))
def test_property_round_trip_length(value, unit):
    factors = {"m": 1.0, "cm": 0.01, "mm": 0.001, "km": 1000.0, "ft": FT, "in": IN, "yd": YD}
    text = f"{value!r} {unit}"
    assert parse_quantity(text) == pytest.approx(value * factors[unit], rel=1e-9)
    # Restating the same value in the same unit never changes the parse.
    assert parse_quantity(f"{text} ({text})") == pytest.approx(value * factors[unit], rel=1e-9)


@PROPERTY_SETTINGS
@given(st.integers(min_value=0, max_value=999_999))
def test_property_count_integers(n):
    assert parse_quantity(str(n), "count") == float(n)
    assert parse_quantity(f"{n:,}", "count") == float(n)


@PROPERTY_SETTINGS
@given(st.integers(min_value=0, max_value=25), st.integers(min_value=1, max_value=26))
def test_property_single_letter(letter_index, n_options):
    options = [f"option text {i}" for i in range(n_options)]
    letter = chr(ord("A") + letter_index)
    expected = letter_index if letter_index < n_options else None
    for form in (letter, f"({letter})", f"{letter}.", f"Option {letter}", f"The answer is {letter}."):
        assert parse_choice(form, options) == expected, form


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Definitely not", False),
        ("Not at all", False),
        ("No, not at all", False),
        ("Yes, definitely not", None),  # a yes and a no
        ("It is not", None),  # negates nothing it names
        ("Yes, it is not far", True),
    ],
)
def test_parse_yes_no_bare_negation(text, expected):
    assert parse_yes_no(text) is expected


def test_parse_choice_pronoun_after_a_letter_is_not_an_option():
    assert parse_choice("B, I think", ["a", "b", "c", "d"]) == 1
    assert parse_choice("A, I think", ["a", "b"]) == 0
