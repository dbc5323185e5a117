"""The adversarial suite: answers a policy could emit, scored by the TRL reward callables
exactly as GRPO calls them (one batch, dataset columns as keyword arguments).

Grouped by class and by answer kind. ``CORRECT`` means the accuracy reward is 1.0; ``WRONG``
means it is exactly what an unparsable answer gets (the floor). A policy that hedges, negates,
refuses or lists several answers must never earn more than the floor; a committed right answer
in any honest spelling must earn 1.0. The format reward has its own table at the end.
"""

from __future__ import annotations

import pytest

from spatialrl.rewards import DISCRETE_ERROR_SCALE, SharpnessSchedule, snra
from spatialrl.rewards.trl import accuracy_reward, format_reward_func

K = 1.0
FLOOR = snra(DISCRETE_ERROR_SCALE, K)
CORRECT, WRONG = "correct", "wrong"
OPTIONS = ["chair", "table", "sofa", "lamp"]

_BASE = dict(answer_value=None, dimension=None, options=[], answer_index=-1, bbox=[])
LENGTH = _BASE | dict(answer_type="numerical", answer_value=3.0, dimension="length", answer="3")
COUNT = _BASE | dict(answer_type="numerical", answer_value=3.0, dimension="count", answer="3")
ZERO = _BASE | dict(answer_type="numerical", answer_value=0.0, dimension="count", answer="0")
AREA = _BASE | dict(answer_type="numerical", answer_value=12.0, dimension="area", answer="12")
HALF = _BASE | dict(answer_type="numerical", answer_value=0.5, dimension="length", answer="0.5")
CHOICE = _BASE | dict(answer_type="discrete", options=OPTIONS, answer_index=1, answer="B")
CHOICE_A = _BASE | dict(answer_type="discrete", options=OPTIONS, answer_index=0, answer="A")
SIDES = _BASE | dict(answer_type="discrete", options=["left", "right"], answer_index=0, answer="A")
YES = _BASE | dict(answer_type="discrete", answer="yes")
NO = _BASE | dict(answer_type="discrete", answer="no")
BOX = _BASE | dict(answer_type="grounding", answer="[10, 20, 30, 40]", bbox=[10.0, 20.0, 30.0, 40.0])
LEFT_OF = _BASE | dict(answer_type="open_ended", answer="Yes, the chair is to the left of the table.")
RIGHT_OF = _BASE | dict(answer_type="open_ended", answer="No, the chair is to the right of the table.")
NEARER = _BASE | dict(answer_type="open_ended", answer="The table is closer to the camera than the chair.")

CASES: dict[str, list[tuple[str, dict, str]]] = {
    "negation, rejection, refusal": [
        ("not 3 m", LENGTH, WRONG),
        ("3 m is wrong", LENGTH, WRONG),
        ("It is not 3 m.", LENGTH, WRONG),
        ("3 m is incorrect", LENGTH, WRONG),
        ("definitely not 3 meters", LENGTH, WRONG),
        ("isn't 3 m", LENGTH, WRONG),
        ("I don't know", LENGTH, WRONG),
        ("unknown", LENGTH, WRONG),
        ("I cannot tell, maybe 3 m", LENGTH, WRONG),
        ("not 3", COUNT, WRONG),
        ("3 is wrong", COUNT, WRONG),
        ("I have no idea", COUNT, WRONG),
        ("not 12 m^2", AREA, WRONG),
        ("B is incorrect", CHOICE, WRONG),
        ("not B", CHOICE, WRONG),
        ("Not (B)", CHOICE, WRONG),
        ("The answer is not B", CHOICE, WRONG),
        ("B is wrong", CHOICE, WRONG),
        ("it isn't the table", CHOICE, WRONG),
        ("not the table", CHOICE, WRONG),
        ("none of the above", CHOICE, WRONG),
        ("I can't tell", CHOICE, WRONG),
        ("not left", SIDES, WRONG),
        ("not right", SIDES, WRONG),
        ("I have no idea", NO, WRONG),
        ("no idea", NO, WRONG),
        ("I cannot say yes", YES, WRONG),
        ("not yes", YES, WRONG),
        ("not no", NO, WRONG),
        ("It is not true", YES, WRONG),
        ("I don't know", NO, WRONG),
        ("unsure", YES, WRONG),
        ("I'm not sure", NO, WRONG),
        ("the box is not [10, 20, 30, 40]", BOX, WRONG),
        ("not [10, 20, 30, 40]", BOX, WRONG),
        ("[10, 20, 30, 40] is wrong", BOX, WRONG),
        ("not left", LEFT_OF, WRONG),
        ("I don't know", LEFT_OF, WRONG),
        ("not the table", NEARER, WRONG),
        ("the table is not closer", NEARER, WRONG),
    ],
    "several answers": [
        ("B C", CHOICE, WRONG),
        ("B (or C)", CHOICE, WRONG),
        ("A (B)", CHOICE, WRONG),
        ("C. B", CHOICE, WRONG),
        ("B or C", CHOICE, WRONG),
        ("B and C", CHOICE, WRONG),
        ("B/C", CHOICE, WRONG),
        ("A, B, C, D", CHOICE, WRONG),
        ("ABCD", CHOICE, WRONG),
        ("B, A", CHOICE, WRONG),
        ("B then D", CHOICE, WRONG),
        ("either B or C", CHOICE, WRONG),
        ("both B and C", CHOICE, WRONG),
        ("all of the above", CHOICE, WRONG),
        ("table or sofa", CHOICE, WRONG),
        ("the table and the sofa", CHOICE, WRONG),
        ("B. sofa", CHOICE, WRONG),
        ("left or right", SIDES, WRONG),
        ("left and right", SIDES, WRONG),
        ("3 or 4 m", LENGTH, WRONG),
        ("3 m or 4 m", LENGTH, WRONG),
        ("3 m, 4 m", LENGTH, WRONG),
        ("3m 4m", LENGTH, WRONG),
        ("3 m (10 ft)", LENGTH, CORRECT),  # one value and its rounded conversion (3.05 m)
        ("3 m, no wait 4 m", LENGTH, WRONG),
        ("3 or 4", COUNT, WRONG),
        ("3 chairs and 2 tables", COUNT, WRONG),
        ("yes or no", YES, WRONG),
        ("yes and no", NO, WRONG),
        ("yes, no", YES, WRONG),
        ("[10, 20, 30, 40] or [0, 0, 5, 5]", BOX, WRONG),
        ("[10, 20, 30, 40] [11, 20, 30, 40]", BOX, WRONG),
        ("yes no", LEFT_OF, WRONG),
        ("the table or the chair", NEARER, WRONG),
    ],
    "answer blocks": [
        ("<answer>A</answer><answer>B</answer>", CHOICE, WRONG),
        ("<answer>B</answer><answer>B</answer>", CHOICE, WRONG),
        ("<answer>A <answer>B</answer>", CHOICE, WRONG),
        ("<answer>B</answer><answer>", CHOICE, WRONG),
        ("<think><answer>A</answer></think><answer>B</answer>", CHOICE, WRONG),
        ("<answer><answer>B</answer></answer>", CHOICE, WRONG),
        ("<think><answer></think>B</answer>", CHOICE, WRONG),  # the block crosses the reasoning
        ("<answer>3 m</answer> <ANSWER>3 m</ANSWER>", LENGTH, WRONG),
        ("<answer>3 m", LENGTH, WRONG),
        ("3 m</answer>", LENGTH, WRONG),
        ("3 m", LENGTH, WRONG),
        ("<answer></answer>", YES, WRONG),
        ("<think>yes</think>", YES, WRONG),
    ],
    "inequalities, ranges, hedges": [
        ("more than 3 m", LENGTH, WRONG),
        ("less than 3 m", LENGTH, WRONG),
        ("< 3 m", LENGTH, WRONG),
        ("> 3 m", LENGTH, WRONG),
        ("≤ 3 m", LENGTH, WRONG),
        ("at least 3 m", LENGTH, WRONG),
        ("at most 3 m", LENGTH, WRONG),
        ("over 3 m", LENGTH, WRONG),
        ("under 3 m", LENGTH, WRONG),
        ("up to 3 m", LENGTH, WRONG),
        ("3 m or more", LENGTH, WRONG),
        ("3 m or less", LENGTH, WRONG),
        ("3+ m", LENGTH, WRONG),
        ("2-4 m", LENGTH, WRONG),
        ("2.9-3.1 m", LENGTH, WRONG),
        ("between 2 and 4 m", LENGTH, WRONG),
        ("from 2 to 4 meters", LENGTH, WRONG),
        ("2 to 4 m", LENGTH, WRONG),
        ("3 m, perhaps more", LENGTH, WRONG),
        ("3 m, give or take a meter", LENGTH, WRONG),
        ("3 ± 1 m", LENGTH, WRONG),
        ("3 +/- 1 m", LENGTH, WRONG),
        ("maybe 3 m", LENGTH, WRONG),
        ("perhaps 3 m", LENGTH, WRONG),
        ("3 m?", LENGTH, WRONG),
        ("3 m or so", LENGTH, WRONG),
        ("somewhere around 3 m", LENGTH, WRONG),
        ("at least 3", COUNT, WRONG),
        ("more than 2", COUNT, WRONG),
        ("3 or more", COUNT, WRONG),
        ("2-4", COUNT, WRONG),
        ("3+", COUNT, WRONG),
        ("fewer than 4", COUNT, WRONG),
        ("over 10 m^2", AREA, WRONG),
        ("10-14 m^2", AREA, WRONG),
        ("maybe B", CHOICE, WRONG),
        ("B?", CHOICE, WRONG),
        ("probably B", CHOICE, WRONG),
        ("possibly yes", YES, WRONG),
        ("maybe", YES, WRONG),
        ("maybe [10, 20, 30, 40]", BOX, WRONG),
        ("probably left", LEFT_OF, WRONG),
    ],
    "arithmetic and code": [
        ("1+2 m", LENGTH, WRONG),
        ("6/2 m", LENGTH, CORRECT),  # a fraction of whole numbers is a number literal (3 m), not arithmetic
        ("sqrt(9) m", LENGTH, WRONG),
        ("eval('3')", LENGTH, WRONG),
        ("1.5*2 m", LENGTH, WRONG),
        ("2+1", COUNT, WRONG),
        ("__import__('os')", CHOICE, WRONG),
    ],
    "malformed numbers": [
        ("nan m", LENGTH, WRONG),
        ("inf m", LENGTH, WRONG),
        ("1e400 m", LENGTH, WRONG),
        ("-3 m", LENGTH, WRONG),
        ("3 bananas", LENGTH, WRONG),
        ("3 m^2", LENGTH, WRONG),
        ("3 seconds", LENGTH, WRONG),
        ("3 m/s", LENGTH, WRONG),
        ("3 m", AREA, WRONG),
        ("3.5", COUNT, WRONG),
        ("3 m", COUNT, WRONG),
        ("-3", COUNT, WRONG),
        ("3" * 3000, COUNT, WRONG),
        ("E", CHOICE, WRONG),
        ("Z", CHOICE, WRONG),
        ("[30, 20, 10, 40]", BOX, WRONG),
        ("[10, 20, 30]", BOX, WRONG),
        ("[nan, 20, 30, 40]", BOX, WRONG),
    ],
    "invisible and empty": [
        ("\u200b", LENGTH, WRONG),
        ("\ufeff", CHOICE, WRONG),
        ("\u2060", YES, WRONG),
        ("\u2800", NO, WRONG),
        ("\u3164", BOX, WRONG),
        ("   ", YES, WRONG),
        ("\u200b3\u200b m", LENGTH, CORRECT),  # invisible characters around a real answer
        ("B\u200b", CHOICE, CORRECT),
    ],
    "correct answers in honest spellings": [
        ("3 m", LENGTH, CORRECT),
        ("3", LENGTH, CORRECT),
        ("3.0 meters", LENGTH, CORRECT),
        ("300 cm", LENGTH, CORRECT),
        ("three meters", LENGTH, CORRECT),
        ("+3 m", LENGTH, CORRECT),
        ("about 3 m", LENGTH, CORRECT),
        ("approximately 3 meters", LENGTH, CORRECT),
        ("~3 m", LENGTH, CORRECT),
        ("3 m (300 cm)", LENGTH, CORRECT),
        ("The distance is 3 m.", LENGTH, CORRECT),
        ("**3 m**", LENGTH, CORRECT),
        ("3 m, not 4 m", LENGTH, CORRECT),
        ("No, it is 3 m", LENGTH, CORRECT),
        ("\\scalar{3} \\distance_unit{meters}", LENGTH, CORRECT),
        ("３ｍ", LENGTH, CORRECT),
        ("3\u2009m", LENGTH, CORRECT),
        ("½ m", HALF, CORRECT),
        ("0½ m", HALF, CORRECT),
        ("50 cm", HALF, CORRECT),
        ("3½ m", _BASE | dict(answer_type="numerical", answer_value=3.5, dimension="length", answer="3.5"),
         CORRECT),
        ("3", COUNT, CORRECT),
        ("three", COUNT, CORRECT),
        ("3 chairs", COUNT, CORRECT),
        ("+3", COUNT, CORRECT),
        ("There are 3 chairs.", COUNT, CORRECT),
        ("none", ZERO, CORRECT),
        ("None", ZERO, CORRECT),
        ("zero", ZERO, CORRECT),
        ("0", ZERO, CORRECT),
        ("there are no chairs", ZERO, CORRECT),
        ("12 m^2", AREA, CORRECT),
        ("12 m²", AREA, CORRECT),
        ("12 square meters", AREA, CORRECT),
        ("B", CHOICE, CORRECT),
        ("(B)", CHOICE, CORRECT),
        ("B.", CHOICE, CORRECT),
        ("B. table", CHOICE, CORRECT),
        ("B, not A", CHOICE, CORRECT),
        ("B (not A)", CHOICE, CORRECT),  # "not" rejects what follows it: A
        ("not A, but B", CHOICE, CORRECT),
        ("The answer is B.", CHOICE, CORRECT),
        ("Option B", CHOICE, CORRECT),
        ("table", CHOICE, CORRECT),
        ("the table", CHOICE, CORRECT),
        ("the table, not the chair", CHOICE, CORRECT),
        ("A table", CHOICE, CORRECT),
        ("**B**", CHOICE, CORRECT),
        ("A", CHOICE_A, CORRECT),
        ("A.", CHOICE_A, CORRECT),
        ("(A) chair", CHOICE_A, CORRECT),
        ("left", SIDES, CORRECT),
        ("A. left", SIDES, CORRECT),
        ("left, not right", SIDES, CORRECT),
        ("yes", YES, CORRECT),
        ("Yes, it is.", YES, CORRECT),
        ("YES", YES, CORRECT),
        ("no", NO, CORRECT),
        ("No, it is not.", NO, CORRECT),
        ("No, it isn't.", NO, CORRECT),
        ("no.", NO, CORRECT),
        ("[10, 20, 30, 40]", BOX, CORRECT),
        ("(10, 20), (30, 40)", BOX, CORRECT),
        ('{"bbox_2d": [10, 20, 30, 40]}', BOX, CORRECT),
        ("Yes", LEFT_OF, CORRECT),
        ("Yes, the chair is to the left of the table.", LEFT_OF, CORRECT),
        ("left", LEFT_OF, CORRECT),
        ("No", RIGHT_OF, CORRECT),
        ("No, it is to the right.", RIGHT_OF, CORRECT),
        ("the table", NEARER, CORRECT),
        ("The table is closer to the camera than the chair.", NEARER, CORRECT),
        ("the chair is farther away", NEARER, CORRECT),
    ],
    "wrong but well formed": [
        ("9 m", LENGTH, WRONG),
        ("A", CHOICE, WRONG),
        ("no", YES, WRONG),
        ("yes", NO, WRONG),
        ("right", SIDES, WRONG),
        ("No", LEFT_OF, WRONG),
        ("Yes, it is to the right", LEFT_OF, WRONG),  # yes contradicts the side it names
        ("the chair", NEARER, WRONG),
        ("The chair is closer to the camera than the table.", NEARER, WRONG),
    ],
}

LENGTH_35 = _BASE | dict(answer_type="numerical", answer_value=3.5, dimension="length", answer="3.5")

CASES |= {
    "verdicts and rejections in other words": [
        ("Wrong: 3 m", LENGTH, WRONG),  # a verdict before the answer
        ("Incorrect answer: 3 m", LENGTH, WRONG),
        ("Not correct: 3 m", LENGTH, WRONG),
        ("Wrong: B", CHOICE, WRONG),
        ("False: B", CHOICE, WRONG),
        ("Incorrect — B", CHOICE, WRONG),
        ("Wrong: yes", YES, WRONG),
        ("Rejected: [10, 20, 30, 40]", BOX, WRONG),
        ("Wrong: the table", NEARER, WRONG),
        ("3 m, which is wrong", LENGTH, WRONG),  # a verdict after it
        ("B. That's not right.", CHOICE, WRONG),
        ("3 m is a mistake", LENGTH, WRONG),
        ("3 m is inaccurate", LENGTH, WRONG),
        ("I doubt it is 3 m", LENGTH, WRONG),
        ("It's hardly 3 m", LENGTH, WRONG),
        ("B is invalid", CHOICE, WRONG),
        ("B would be a mistake", CHOICE, WRONG),
        ("Anything but B", CHOICE, WRONG),
        ("Any option but B", CHOICE, WRONG),
        ("B. Just kidding.", CHOICE, WRONG),
        ("Yes, but I'm not confident", YES, WRONG),
        ("B, A is wrong", CHOICE, CORRECT),  # the verdict is on A
        ("No, that's wrong. It is B.", CHOICE, CORRECT),  # the verdict is on the "No"
        ("B and not C", CHOICE, CORRECT),  # "not" rejects what follows it
        ("B instead of C", CHOICE, CORRECT),
        ("It is not B", CHOICE, WRONG),
        ("B is not closer", CHOICE, WRONG),  # nothing follows the "not": the whole clause
    ],
    "bounds and hedges in other words": [
        ("3 m max", LENGTH, WRONG),
        ("max. 3 m", LENGTH, WRONG),
        ("3 m tops", LENGTH, WRONG),
        ("3 m (upper bound)", LENGTH, WRONG),
        ("3 m, if not more", LENGTH, WRONG),
        ("just shy of 3 m", LENGTH, WRONG),
        ("3 plus", COUNT, WRONG),
        ("3 or thereabouts", COUNT, WRONG),
        ("3 m, with some uncertainty", LENGTH, WRONG),
        ("B, presumably", CHOICE, WRONG),
        ("kind of yes", YES, WRONG),
        ("B or something", CHOICE, WRONG),
        ("two-something meters", LENGTH, WRONG),
        ("Yes (50% confident)", YES, WRONG),
    ],
    "fractions and number words": [
        ("3 and a half meters", LENGTH_35, CORRECT),
        ("three and a half meters", LENGTH_35, CORRECT),
        ("3 and ½ m", LENGTH_35, CORRECT),
        ("three point five meters", LENGTH_35, CORRECT),
        ("half a meter", HALF, CORRECT),
        ("point five meters", HALF, CORRECT),
        ("three and a half", COUNT, WRONG),  # a count is whole
        ("a dozen", _BASE | dict(answer_type="numerical", answer_value=12.0, dimension="count", answer="12"),
         CORRECT),
        ("There aren't any chairs", ZERO, CORRECT),
        ("nothing", ZERO, CORRECT),
    ],
    "markup": [
        ("$3$", LENGTH, CORRECT),
        ("$3$ m", LENGTH, CORRECT),
        ("$0$", ZERO, CORRECT),
        ("_yes_", YES, CORRECT),
        ("_No_", NO, CORRECT),
        ("_table_", CHOICE, CORRECT),
        ("~~A~~ B", CHOICE, CORRECT),  # struck out
        ("_left_", LEFT_OF, CORRECT),
    ],
    "letters, idioms and relations said another way": [
        ("A is the answer", CHOICE_A, CORRECT),
        ("A is correct.", CHOICE_A, CORRECT),
        ("B, I think", CHOICE, CORRECT),
        ("Yes, there is no doubt.", YES, CORRECT),
        ("Yes, there are no other chairs.", YES, CORRECT),
        ("There is no chair.", NO, CORRECT),
        ("Definitely not", NO, CORRECT),
        ("Yes, definitely not", YES, WRONG),
        ("The table is closer; the chair is farther.", NEARER, CORRECT),
        ("The table is closer; the chair is closer.", NEARER, WRONG),
        ("Yes, the table is to the right of the chair.", LEFT_OF, CORRECT),  # the converse
        ("The chair is on the left, the table on the right.", LEFT_OF, CORRECT),
        ("No, the table is to the left of the chair.", RIGHT_OF, CORRECT),
        ("The table is to the left of the chair.", LEFT_OF, WRONG),
    ],
}

AREA_15 = _BASE | dict(answer_type="numerical", answer_value=15.0, dimension="area", answer="15")
LENGTH_24 = _BASE | dict(answer_type="numerical", answer_value=2.4, dimension="length", answer="2.4")

CASES |= {
    "refusals that start like an answer": [
        ("No clue.", NO, WRONG),
        ("No way to tell from the image.", NO, WRONG),
        ("No comment", NO, WRONG),
        ("No information.", ZERO, WRONG),
        ("Zero idea.", ZERO, WRONG),
        ("None of your business.", ZERO, WRONG),
        ("No way to tell.", RIGHT_OF, WRONG),
    ],
    "more bounds, hedges and contradictions": [
        ("3 m upwards", LENGTH, WRONG),
        ("within 3 m", LENGTH, WRONG),
        ("roughly [10, 20, 30, 40] or a bit larger", BOX, WRONG),
        ("at least [10, 20, 30, 40]", BOX, WRONG),
        ("4ish", _BASE | dict(answer_type="numerical", answer_value=4.0, dimension="count", answer="4"), WRONG),
        ("Yes, the chair is to the left of the table. No.", LEFT_OF, WRONG),
        ("Yes (100% sure).", YES, CORRECT),  # full confidence is no hedge
    ],
    "words after the answer": [
        ("<think>x</think><answer>B</answer> The answer is D.", CHOICE, WRONG),
        ("<think>x</think><answer>B</answer><think>no, D</think>", CHOICE, WRONG),
        ("<think>x</think><answer>3 m</answer> Actually it's 4 m.", LENGTH, WRONG),
        ("<think>x</think><answer>B</answer><answer/>", CHOICE, WRONG),
        ("<think>x</think><answer>B</answer>\n", CHOICE, CORRECT),
        ("<think>x</think><answer>B</answer><|im_end|>", CHOICE, CORRECT),
    ],
    "more honest spellings": [
        ("15 m².", AREA_15, CORRECT),
        ("The area is 15 m², not 20 m².", AREA_15, CORRECT),
        ("12/5 m", LENGTH_24, CORRECT),
        ("2 2/5 m", LENGTH_24, CORRECT),
        ("$\\frac{12}{5}$ m", LENGTH_24, CORRECT),
        ("two and two-fifths meters", LENGTH_24, CORRECT),
        ("1/2 m", HALF, CORRECT),
        ("three quarters of a meter", _BASE | dict(answer_type="numerical", answer_value=0.75, dimension="length",
                                                    answer="0.75"), CORRECT),
        ("There are no chairs, not even one.", ZERO, CORRECT),
        ("0 (none)", ZERO, CORRECT),
        ("I don't see any chairs.", ZERO, CORRECT),
        ("The table, which is closer to the camera than the chair.", NEARER, CORRECT),
        ("10, 20, 30, 40", BOX, CORRECT),
    ],
}

CASES |= {
    "look-alike letters, marks and other languages": [
        ("n\u043et B", CHOICE, WRONG),  # Cyrillic o: reads "not B"
        ("n\u2c9ft 3 m", LENGTH, WRONG),  # Coptic o
        ("\u0274\u1d0f\u1d1b yes", YES, WRONG),  # small capitals
        ("no\u1e6b 3", COUNT, WRONG),  # a dot above the t
        ("B \u0421", CHOICE, WRONG),  # Cyrillic C: two letters
        ("Yes/n\u043e", YES, WRONG),
        ("B\u0336 C", _BASE | dict(answer_type="discrete", options=OPTIONS, answer_index=2, answer="C"), CORRECT),
        ("nicht B", CHOICE, WRONG),
        ("\u4e0d\u662f B", CHOICE, WRONG),  # Chinese "is not"
        ("B \u274c", CHOICE, WRONG),  # a cross
        ("\u00acB", CHOICE, WRONG),
        ("B: no", CHOICE, WRONG),  # a bare "no" after the answer takes it back
        ("B - nope", CHOICE, WRONG),
        ("eliminate B", CHOICE, WRONG),
        ("B if not C", CHOICE, WRONG),
        ("No, B", CHOICE, CORRECT),
        ("<s>B</s>", CHOICE, WRONG),
        ("<s>A</s> B", CHOICE, CORRECT),
        ("<!-- A --> B", CHOICE, CORRECT),
        ("3 m at the very least", LENGTH, WRONG),
        ("Without a doubt, yes.", YES, CORRECT),
    ],
    "conversions and relation clauses": [
        ("approximately 3 meters (about 9.8 feet)", LENGTH, CORRECT),  # a rounded conversion
        ("3 m (9 ft 10 in)", LENGTH, CORRECT),
        ("3 m (3.1 m)", LENGTH, WRONG),  # the same unit: two values
        ("3 m (8 ft)", LENGTH, WRONG),  # 2.44 m: another value
        ("12 m<sup>2</sup>", AREA, CORRECT),
        ("12 m\u00b2 (about 129 sq ft)", AREA, CORRECT),
        ("Yes, it's not to the left.", LEFT_OF, WRONG),
        ("Yes, left. Or right.", LEFT_OF, WRONG),
        ("Yes, the chair is left of the table. Also, the chair is right of the table.", LEFT_OF, WRONG),
        ("The chair is not to the left of the table.", RIGHT_OF, WRONG),  # a rejected side is never flipped
        ("No — the chair is right of the table", RIGHT_OF, CORRECT),
        ("The table is closer than the chair, or vice versa.", NEARER, WRONG),
    ],
    "changes of mind, display tricks and yes/no words": [
        ("3 - no, 4", COUNT, WRONG),  # a change of mind
        ("3 m, no, 4 m", LENGTH, WRONG),
        ("\u202eB ton", CHOICE, WRONG),  # a right-to-left override shows "not B"
        ("Yes with 60% probability", YES, WRONG),
        ("No doubt about it.", YES, CORRECT),
        ("Affirmative", YES, CORRECT),
        ("Negative.", NO, CORRECT),
        ("Of course not", NO, CORRECT),
    ],
    "more word-list gaps": [
        ("nothing like 3 m", LENGTH, WRONG),
        ("nowhere near [10, 20, 30, 40]", BOX, WRONG),
        ("a long way from B", CHOICE, WRONG),
        ("No one can tell", NO, WRONG),
        ("No definitive answer", NO, WRONG),
        ("Nothing can be determined", ZERO, WRONG),
        ("No visible chair", ZERO, CORRECT),
        ("None can be seen.", ZERO, CORRECT),
        ("B is a distractor", CHOICE, WRONG),
        ("3 m or slightly more", LENGTH, WRONG),
        ("3 or a few more", COUNT, WRONG),
        ("0/1", ZERO, WRONG),  # "0 or 1", not a fraction
        ("+ 3 m", LENGTH, CORRECT),
        ("nothing but B", CHOICE, CORRECT),
    ],
}

FORMAT_CASES = [
    ("<think>look</think><answer>3 m</answer>", 1.0),
    ("<think></think><answer>B</answer>", 1.0),
    ("  <think>a</think>\n<answer>yes</answer>\n", 1.0),
    ("<think>look</think><answer>\u200b</answer>", 0.0),
    ("<think>look</think><answer>\ufeff</answer>", 0.0),
    ("<think>look</think><answer>\u2060\u2060</answer>", 0.0),
    ("<think>look</think><answer>\u2800</answer>", 0.0),
    ("<think>look</think><answer>\u3164</answer>", 0.0),
    ("<think>look</think><answer>\u00ad</answer>", 0.0),
    ("<think>look</think><answer> </answer>", 0.0),
    ("<think>look</think><answer></answer>", 0.0),
    ("<think>look</think><answer>A</answer><answer>B</answer>", 0.0),
    ("<think>look</think><answer>A <answer>B</answer>", 0.0),
    ("<think><answer>A</answer></think><answer>B</answer>", 0.0),
    ("<answer>B</answer><think>look</think>", 0.0),
    ("<think>look</think>", 0.0),
    ("<answer>B</answer>", 0.0),
    ("<think>look<answer>B</answer>", 0.0),
    ("<think>look</think><answer>B</answer> trailing text", 0.0),
    ("preamble <think>look</think><answer>B</answer>", 0.0),
    ("<think>look</think><think>more</think><answer>B</answer>", 0.0),
    ("<THINK>look</THINK><ANSWER>B</ANSWER>", 0.0),
    ("<think>x</think><answer>A <ANSWER>B</answer>", 0.0),  # another spelling of a tag inside
    ("<think>x</think><answer><br></answer>", 0.0),  # markup that renders as nothing
    ("<think>x</think><answer>&#8203;</answer>", 0.0),
    ("<think>x</think><answer>\\text{}</answer>", 0.0),
    ("<think>x</think><answer>$3$</answer>", 1.0),
    ("<think>x</think><answer>\u24b8</answer>", 1.0),  # a circled letter is visible
    ("<think>x</think><answer>\\quad</answer>", 0.0),  # LaTeX space
    ("<think>x</think><answer>\\phantom{B}</answer>", 0.0),  # takes space, shows nothing
    ("<think>x</think><answer>\\enspace</answer>", 0.0),
    ("", 0.0),
]


RAW = ("answer blocks", "words after the answer")  # classes whose texts are whole completions


def _completion(cls: str, text: str) -> str:
    return text if cls in RAW else f"<answer>{text}</answer>"


def _score(text: str, row: dict, cls: str = "") -> float:
    completion = _completion(cls, text)
    reward = accuracy_reward(SharpnessSchedule.constant(K))
    return reward(prompts=["q"], completions=[completion], completion_ids=[[0]],
                  **{key: [value] for key, value in row.items()})[0]


ALL = [(cls, text, row, expected) for cls, rows in CASES.items() for text, row, expected in rows]


@pytest.mark.parametrize("cls,text,row,expected", ALL, ids=[f"{c}: {t[:40]!r}" for c, t, _, _ in ALL])
def test_accuracy_reward(cls, text, row, expected):
    score = _score(text, row, cls)
    if expected == CORRECT:
        assert score == pytest.approx(1.0), f"{cls}: {text!r} is a committed right answer"
    else:
        assert score == pytest.approx(FLOOR), f"{cls}: {text!r} must earn no more than garbage"


@pytest.mark.parametrize("completion,expected", FORMAT_CASES)
def test_format_reward(completion, expected):
    assert format_reward_func()(completions=[completion])[0] == expected


def test_suite_is_large_and_covers_every_kind():
    assert len(ALL) + len(FORMAT_CASES) >= 200
    kinds = {row["answer_type"] for _, _, row, _ in ALL}
    assert kinds == {"numerical", "discrete", "grounding", "open_ended"}


def test_a_batch_scores_like_single_calls():
    """GRPO scores a whole batch at once: the same answers give the same rewards."""
    reward = accuracy_reward(SharpnessSchedule.constant(K))
    rows = [row for _, _, row, _ in ALL]
    completions = [_completion(cls, text) for cls, text, _, _ in ALL]
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    batch = reward(completions=completions, **columns)
    assert batch == pytest.approx([_score(text, row, cls) for cls, text, row, _ in ALL])
