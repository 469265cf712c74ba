"""Predict, then press: each runnable step's question is answered from that step's numbers,
on two different test models (and the real TAEF2 where present), and the reveal says which
choice the numbers support, what the class predicted, and where another model answers
differently. Every expected answer is re-derived here from the step's own table."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from explorer.atlas import TIE
from explorer.ui.lesson import questions as qs
from explorer.ui.lesson import steps as st
from explorer.ui.lesson import views as lt

MODELS = ("test-kl", "test-tiny")


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[int, st.StepResult]]:
    """Every runnable step on both test models (step 1 once: it ignores the model)."""
    one = lt.run_step(1, MODELS[0])
    return {m: {1: one, **{n: lt.run_step(n, m) for n in lt.RUNNABLE[1:]}} for m in MODELS}


def _row(t: pd.DataFrame, col: str, name: str, want: str):
    return t.loc[t[col] == name, want].iloc[0]


def expected(n: int, t: pd.DataFrame) -> int | None:
    """The choice a reader of the step's table would pick, worked out here independently."""
    if n == 1:
        ae = float(_row(t, "model", "ae", "sample_confidence"))
        vae = float(_row(t, "model", "vae", "sample_confidence"))
        return 2 if abs(ae - vae) <= 0.02 else (0 if ae > vae else 1)
    if n == 2:
        ratio = float(str(_row(t, "what", "compression", "value"))[:-1])
        return 0 if ratio < 5 else 1 if ratio < 20 else 2 if ratio < 100 else 3
    if n == 3:
        first, last = t.psnr_db.iloc[0], t.psnr_db.iloc[-1]
        return 2 if abs(first - last) <= 0.05 else (0 if last < first else 1)
    if n == 4:
        kl = t[t.statistic == "KL to N(0,1) (nats)"]
        return None if kl.empty else (0 if float(kl.value.iloc[0]) <= 0.1 else 1)
    if n == 5:
        return 0 if t.psnr_db.iloc[2] >= 20 else 1
    if n == 6:
        flip = float(_row(t, "change", "mirror image (flip)", "distance"))
        hue = float(_row(t, "change", "hue turned 180°", "distance"))
        return 2 if abs(flip - hue) <= 0.02 else (0 if flip > hue else 1)
    if n == 7:
        vae = t[t.space == "vae"].set_index("labels").knn5
        scores = [float(vae[k]) for k in ("source", "appearance", "meaning")]
        return scores.index(max(scores))
    raise AssertionError(n)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("n", lt.RUNNABLE)
def test_each_reveal_is_the_choice_its_numbers_support(runs, model, n):
    r = runs[model][n]
    got = qs.answer(n, r)
    assert got.choice == expected(n, r.table)
    text = qs.reveal(n, got, model)
    assert f"the numbers support **{qs.choice_label(n, got.choice)}**" in text
    # the numbers the reveal quotes are the table's
    quoted = [float(x) for x in re.findall(r"(\d+(?:\.\d+)?)", got.evidence)]
    if n == 6:
        t = r.table.set_index("change").distance
        assert [int(x) for x in re.findall(r"(\d+)%", got.evidence)] == [
            round(100 * t["mirror image (flip)"]),
            round(100 * t["hue turned 180°"]),
        ]
        assert f"**{t['mirror image (flip)']:.0%}**" in r.notice  # the notice quotes the same
    if n == 3:
        assert quoted[:2] == pytest.approx([r.table.psnr_db.iloc[0], r.table.psnr_db.iloc[-1]])
    if n == 5:
        assert quoted[0] == pytest.approx(round(r.table.psnr_db.iloc[2], 1))


def test_a_model_that_answers_differently_is_named_in_the_reveal(runs):
    a, b = MODELS
    differ = [
        n for n in lt.RUNNABLE if qs.answer(n, runs[a][n]).choice != qs.answer(n, runs[b][n]).choice
    ]
    assert differ, "the two test models answer every question alike: the check cannot fail"
    for n in lt.RUNNABLE[1:]:
        mine, theirs = qs.answer(n, runs[a][n]), qs.answer(n, runs[b][n])
        text = qs.reveal(n, mine, a, others={b: theirs, a: mine})
        if n in differ:
            assert f"**{b}** answers differently: {theirs.evidence}" in text
            assert qs.choice_label(n, theirs.choice) in text
        else:
            assert f"**{b}** gave the same answer" in text
        assert f"**{a}** answers" not in text  # never compared with itself


def test_step3_notice_and_answer_agree_on_the_direction(runs):
    for model in MODELS:
        r = runs[model][3]
        got = qs.answer(3, r)
        said = {0: "lower: the losses pile up", 1: "higher", 2: "(about the same)"}[got.choice]
        assert said in r.notice


def test_the_class_prediction_is_checked_against_the_run(runs):
    r = runs[MODELS[0]][6]
    got = qs.answer(6, r)
    labels = qs.QUESTIONS[6].labels()
    right, wrong = labels[got.choice], labels[(got.choice + 1) % len(labels)]
    assert "this run agrees" in qs.reveal(6, got, MODELS[0], prediction=right)
    assert "not what this run gave" in qs.reveal(6, got, MODELS[0], prediction=wrong)
    assert qs.parse_prediction(6, right[0]) == got.choice  # the letter alone
    assert qs.parse_prediction(6, "E. nonsense") is None
    assert "predicted" not in qs.reveal(6, got, MODELS[0], prediction="E. nonsense")


def _table6(flip: float, hue: float) -> st.StepResult:
    rows = [
        {"change": "mirror image (flip)", "distance": flip},
        {"change": "hue turned 180°", "distance": hue},
    ]
    return st.StepResult(table=pd.DataFrame(rows))


@pytest.mark.parametrize(
    ("flip", "hue", "choice"), [(0.9, 0.4, 0), (0.3, 0.6, 1), (0.50, 0.51, 2), (0.2, 0.2, 2)]
)
def test_constructed_numbers_give_each_answer(flip, hue, choice):
    assert qs.answer(6, _table6(flip, hue)).choice == choice


def test_step7_near_tie_is_said(runs):
    t = pd.DataFrame(
        {
            "space": ["vae"] * 3,
            "labels": ["meaning", "appearance", "source"],
            "knn5": [0.2, 0.50, 0.50 - TIE / 2],
            "chance": [0.07, 0.14, 0.06],
        }
    )
    got = qs.answer(7, st.StepResult(table=t))
    assert got.choice == 1 and "nearly a tie" in got.evidence


def test_a_vq_model_is_told_the_prior_question_does_not_apply():
    r = lt.run_step(4, "test-vq")
    got = qs.answer(4, r)
    assert got.choice is None and "does not apply" in qs.reveal(4, got, "test-vq")


@pytest.mark.slow
@pytest.mark.parametrize("n", (2, 3, 4, 6))
def test_reveals_on_the_real_taef2(taef2_dir, n):
    r = lt.run_step(n, "local:taef2", str(taef2_dir))
    got = qs.answer(n, r)
    assert got.choice == expected(n, r.table)
    assert qs.choice_label(n, got.choice) in qs.reveal(n, got, "local:taef2")
