"""verl's per-sample reward (``spatialrl.integrations.verl.compute_score``) equals the TRL reward
callables' total for the same completion, ground truth and step; the batch stage's rewards and
r_hat equal the TRL trainer's reward assembly. Runs in the main environment (no verl)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from spatialrl.data.build import BuildConfig, scene_rows
from spatialrl.data.export import verl_row
from spatialrl.integrations import verl as V
from spatialrl.rewards.consistency import apply_view_consistency
from spatialrl.rewards.schedules import SharpnessSchedule
from spatialrl.rewards.trl import accuracy_reward, format_reward_func

COLUMNS = ("answer_type", "answer", "answer_value", "dimension", "options", "answer_index", "bbox")
TOTAL = 100


@pytest.fixture(scope="module")
def rows():
    """World rows of every question type (two scenes), as the verl export writes them."""
    cfg = BuildConfig(scenes=2, image_size=32)
    out = [r for i in range(2) for r in scene_rows(i, cfg)]
    assert len({r["answer_type"] for r in out}) == 4
    exported = [verl_row(r, "train", i) for i, r in enumerate(out)]
    return exported + [_free_text_row(text) for text in FREE_TEXT]


#: Hand-made open-ended rows whose reference states no quantity and no relation: the accuracy
#: reward does not apply to them (``None``), the format reward still does.
FREE_TEXT = ("A wooden chair stands near the wall.", "The room looks like a small kitchen.")


def _free_text_row(answer):
    info = {"answer_type": "open_ended", "answer": answer, "answer_value": None, "dimension": None,
            "options": [], "answer_index": -1, "bbox": [], "pair_id": "hand", "view": "original"}
    return {"data_source": "spatialrl", "reward_model": {"ground_truth": answer}, "extra_info": info}


def _wrong(info):
    kind = info["answer_type"]
    if kind == "numerical":
        return f"{info['answer_value'] * 1.7 + 0.3:.2f}" + (" m" if info["dimension"] == "length" else "")
    if kind == "discrete" and len(info["options"]):
        return info["options"][(info["answer_index"] + 1) % len(info["options"])]
    if kind == "grounding":
        return "[0.0, 0.0, 0.1, 0.1]"
    return {"yes": "no", "no": "yes"}.get(str(info["answer"]).strip().lower(), "left")


def completions(info):
    """Correct, near-miss, wrong, malformed and gamed completions for one row."""
    answer, wrong = str(info["answer"]), _wrong(info)
    out = [
        f"<think>look</think><answer>{answer}</answer>",  # correct, formatted
        f"<answer>{answer}</answer>",  # correct, no reasoning block
        f"<think>hmm</think><answer>{wrong}</answer>",  # wrong
        answer,  # untagged: unparsable under the strict policy
        f"<think>a</think><answer>{answer}</answer><answer>{wrong}</answer>",  # two answers
        f"<think>x</think><answer>{answer} or {wrong}</answer>",  # hedge
        "<think>x</think><answer></answer>",  # empty answer
        f"<THINK>x</THINK><ANSWER>{answer}</ANSWER>",  # wrong tag spelling
        "",  # nothing
    ]
    if info["answer_type"] == "numerical" and info["answer_value"]:
        out.append(f"<think>close</think><answer>{info['answer_value'] * 1.05:.3f}</answer>")  # near miss
    return out


def trl_total(completion, info, step, total_steps, schedule, weights=(0.9, 0.1)):
    """What the TRL trainer's reward step gives: NaN-sum of the weighted callables' values."""
    acc = accuracy_reward(schedule)
    fmt = format_reward_func()
    state = SimpleNamespace(global_step=step, max_steps=total_steps)
    columns = {name: [info[name]] for name in COLUMNS}
    a = acc(completions=[completion], trainer_state=state, **columns)[0]
    f = fmt(completions=[completion])[0]
    rpf = np.array([[np.nan if a is None else a, f]])
    if np.all(np.isnan(rpf)):
        return None, a, f
    return float(np.nansum(rpf * np.array(weights)[None, :], axis=1)[0]), a, f


def test_compute_score_equals_the_trl_reward_on_many_cases(rows):
    schedule = SharpnessSchedule.paper()
    cases, kinds, nones = 0, set(), 0
    for n, row in enumerate(rows):
        info = row["extra_info"]
        step = (n * 7) % (TOTAL + 1)
        for completion in completions(info):
            expected, acc, _ = trl_total(completion, info, step, TOTAL, schedule)
            got = V.compute_score(row["data_source"], completion, row["reward_model"]["ground_truth"], info,
                                  step=step, total_steps=TOTAL)
            assert isinstance(got, float)
            assert got == expected, (info["question_type"], completion, step)
            # the same k passed as a number (extra_info["sharpness"]) gives the same value
            k = schedule(step, TOTAL)
            assert V.compute_score("spatialrl", completion, None, {**info, "sharpness": k}) == expected
            nones += acc is None
            kinds.add(info["answer_type"])
            cases += 1
    assert cases >= TOTAL, cases
    assert kinds == {"numerical", "discrete", "grounding", "open_ended"}
    assert nones > 0  # free-text open-ended rows: accuracy does not apply, format alone scores


def test_fixed_k_and_settings_route(rows):
    info = next(r["extra_info"] for r in rows if r["extra_info"]["answer_type"] == "numerical")
    near = f"<think>t</think><answer>{info['answer_value'] + 0.3:.3f}</answer>"
    default = V.compute_score("spatialrl", near, None, info)
    assert default == trl_total(near, info, 0, 1, SharpnessSchedule.paper())[0]  # TRL without a step: k(0)
    sharp = V.compute_score("spatialrl", near, None, info, sharpness=100.0)
    assert sharp < default
    fixed = SharpnessSchedule.constant(100.0)
    assert sharp == trl_total(near, info, 0, 1, fixed)[0]
    # reward_kwargs may carry settings: weights of the total
    only_format = V.compute_score("spatialrl", near, None, info, rewards={"format": 1.0}, consistency_reward=None)
    assert only_format == 1.0


def test_none_rule_gives_a_number(rows):
    """A row no weighted component applies to scores 0.0 (accuracy alone on free text)."""
    info = rows[-1]["extra_info"]
    assert trl_total("<answer>x</answer>", info, 0, 1, SharpnessSchedule.paper())[1] is None
    assert V.compute_score("spatialrl", "<answer>x</answer>", None, info, rewards={"accuracy": 1.0}) == 0.0
    assert V.compute_score("spatialrl", "<think>a</think><answer>x</answer>", None, info) == pytest.approx(0.1)


def test_batch_stage_matches_trl_assembly_and_penalises_pairs(rows):
    settings = V.settings_from(None)
    schedule = settings.schedule()
    picked = [r for r in rows if r["extra_info"]["answer_type"] not in ("open_ended",) and "view" in r][:8]  # 4 pairs, in order
    assert [r["view"] for r in picked] == ["original", "mirror"] * 4
    texts, infos, groups = [], [], []
    for g, row in enumerate(picked):
        info = row["extra_info"]
        answer = str(info["answer"])
        # the original view answers right, its mirror wrong: a view gap the penalty acts on
        group = ([f"<think>a</think><answer>{answer}</answer>"] * 3 + [completions(info)[2]]
                 if row["view"] == "original" else [completions(info)[2]] * 3 + [f"<answer>{answer}</answer>"])
        texts += group
        infos += [info] * len(group)
        groups += [g] * len(group)
    errors, formats = V.sample_errors(texts, infos, settings)
    for step in (0, 50, 100):
        k = schedule(step, 100)
        plain = V.score_batch(errors, formats, V.settings_from(None, consistency_reward=None), k)
        for i, (text, info) in enumerate(zip(texts, infos)):
            assert plain.scores[i] == trl_total(text, info, step, 100, schedule)[0]
        paired = V.score_batch(errors, formats, settings, k, [i["pair_id"] for i in infos],
                               [i["view"] for i in infos], groups)
        acc = plain.components[:, 0]
        expected, deltas = apply_view_consistency(acc, [i["pair_id"] for i in infos],
                                                  [i["view"] == "mirror" for i in infos])
        np.testing.assert_array_equal(paired.components[:, 0], expected)
        assert len(deltas) == 4 and (deltas > 0).all()
        assert (paired.scores <= plain.scores + 1e-12).all() and (paired.scores < plain.scores).any()
        np.testing.assert_array_equal(paired.abs_rewards, np.clip(expected, 0, 1))
        assert paired.metrics["sharpness/k"] == k
    assert V.settings_from(None).k_at(1, 100) == schedule(0, 100)  # verl's first step is TRL's step 0


def test_unscorable_rows_get_nan_r_hat():
    settings = V.settings_from(None, rewards={"accuracy": 1.0}, consistency_reward=None)
    out = V.score_batch(np.array([0.0, np.nan]), np.array([1.0, 1.0]), settings, 10.0)
    assert out.scores.tolist() == [1.0, 0.0]
    assert out.abs_rewards[0] == 1.0 and math.isnan(out.abs_rewards[1])


def test_settings_are_validated():
    with pytest.raises(ValueError, match="semantic"):
        V.settings_from(None, rewards={"semantic": 1.0})
    with pytest.raises(ValueError, match="known"):
        V.settings_from(None, k_maxx=3)
    with pytest.raises(ValueError, match="consistency_reward"):
        V.settings_from(None, rewards={"format": 1.0})  # the default penalty acts on accuracy


def test_mirror_pair_sampler_keeps_pairs_adjacent_and_shuffles_per_epoch():
    pair_ids = [f"p{i // 2}" for i in range(20)] + ["lonely"]
    views = ["original", "mirror"] * 10 + ["original"]
    sampler = V.MirrorPairSampler(pair_ids=pair_ids, views=views, seed=3, shuffle=True)
    assert len(sampler) == 20 and sampler.lonely == [20]
    first, second = list(sampler), list(sampler)
    for order in (first, second):
        assert sorted(order) == list(range(20))
        for a, b in zip(order[::2], order[1::2]):
            assert pair_ids[a] == pair_ids[b] and views[a] == "original" and views[b] == "mirror"
    assert first != second  # a new pair order each epoch
    again = V.MirrorPairSampler(pair_ids=pair_ids, views=views, seed=3, shuffle=True)
    assert list(again) == first  # seeded
    with pytest.raises(ValueError, match="even"):
        V.MirrorPairSampler(pair_ids=pair_ids, views=views, data_config={"train_batch_size": 3})
