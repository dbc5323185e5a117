"""Typed answer columns derived from a free-text question and answer (spatialrl.data.typed_answers)."""

from __future__ import annotations

import pytest

from spatialrl.data.typed_answers import question_dimension, typed_answer


@pytest.mark.parametrize("question,dimension", [
    ("How far is the chair from the table?", "length"),
    ("What is the distance between the lamp and the sofa?", "length"),
    ("How tall is the door, in meters?", "length"),
    ("How many meters separate the two beds?", "length"),
    ("What is the area of the rug in square meters?", "area"),
    ("How many chairs are there?", "count"),
    ("What is the number of windows?", "count"),
    ("Is the lamp to the left of the sofa?", None),
    ("What color is the cup?", None),
])
def test_question_dimension(question, dimension):
    assert question_dimension(question) == dimension


@pytest.mark.parametrize("question,answer,expected", [
    ("How far is the chair from the table?", "The chair is 1.5 meters from the table.",
     {"answer_type": "open_ended", "answer_value": 1.5, "dimension": "length", "unit": "m"}),
    ("How far apart are they?", "About 150 cm.", {"answer_type": "open_ended", "answer_value": 1.5, "dimension": "length"}),
    ("How big is the table?", "It is 1.2 meters wide and 0.8 meters deep.",  # two quantities: no value
     {"answer_type": "open_ended", "answer_value": None, "dimension": None, "unit": ""}),
    ("How far is it?", "Between 2 and 3 meters.", {"answer_type": "open_ended", "answer_value": None}),
    ("How many chairs are there?", "There are 3 chairs.", {"answer_type": "open_ended", "answer_value": 3.0,
                                                           "dimension": "count", "unit": ""}),
    ("How many chairs are there?", 4, {"answer_type": "open_ended", "answer_value": 4.0, "dimension": "count"}),
    ("What is the floor area?", "12 square meters", {"answer_value": 12.0, "dimension": "area", "unit": "m^2"}),
    ("Is the lamp on the left?", "Yes.", {"answer_type": "discrete", "answer": "yes", "answer_value": None}),
    ("Is there a window?", " NO ", {"answer_type": "discrete", "answer": "no"}),
    ("Is the lamp on the left?", "Yes, the lamp is on the left.", {"answer_type": "open_ended", "answer_value": None}),
    ("What is on the table?", "A red cup.", {"answer_type": "open_ended", "answer_value": None, "bbox": []}),
    ("Where is the cup?", "The cup is at [10, 20, 40, 60].", {"answer_type": "grounding", "bbox": [10.0, 20.0, 40.0, 60.0]}),
])
def test_typed_answer(question, answer, expected):
    typed = typed_answer(question, answer)
    for key, value in expected.items():
        assert typed[key] == value, key
    assert typed["options"] == [] and typed["answer_index"] == -1
    assert ("answer" in typed) == (typed["answer_type"] == "discrete")


def test_a_box_column_gives_the_grounding_box():
    typed = typed_answer("Where is the cup?", "[1, 0, 3, 2]", box=[[4, 0, 6, 2]])
    assert typed["answer_type"] == "grounding" and typed["bbox"] == [4.0, 0.0, 6.0, 2.0]
    # a box column does not make a text answer a grounding answer
    assert typed_answer("What is in the box?", "A cat.", box=[1, 2, 3, 4])["answer_type"] == "open_ended"
