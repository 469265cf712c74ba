"""Predict, then press: one question per runnable step, its choices shown before the button,
and the answer read from the numbers that step's run put on screen (its table).

Nothing here knows an answer in advance: :func:`answer` reads the result, and :func:`reveal`
says which choice those numbers support, what the class predicted, and what the other models
this app has run the step on answered, where they answered differently. No gradio here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from explorer.atlas import TIE as KNN_TIE
from explorer.ui.lesson import steps as st

LETTERS = "ABCD"
SHARE_TIE = 0.02  # distances (as shares of an unrelated photo's) or confidences this close: a tie


@dataclass(frozen=True)
class Answer:
    """What one run says: the choice its numbers support (an index into the question's
    choices; None where the question does not apply to the model that ran), and the numbers
    that decide it, as a phrase (markdown)."""

    choice: int | None
    evidence: str


@dataclass(frozen=True)
class Question:
    prompt: str
    choices: tuple[str, ...]
    judge: Callable[[pd.DataFrame], Answer]  # the step's table -> its answer

    def labels(self) -> list[str]:
        """The choices as shown: ``"A. more"``, ``"B. less"``, …"""
        return [f"{LETTERS[i]}. {c}" for i, c in enumerate(self.choices)]


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _cmp(a: float, b: float, tie: float) -> int:
    """0: a is larger, 1: b is larger, 2: within ``tie`` of each other."""
    if abs(a - b) <= tie:
        return 2
    return 0 if a > b else 1


def _by(table: pd.DataFrame, col: str, val: str, want: str):
    return table.loc[table[col] == val, want].iloc[0]


def _step1(t: pd.DataFrame) -> Answer:
    ae, vae = (float(_by(t, "model", k, "sample_confidence")) for k in ("ae", "vae"))
    return Answer(
        _cmp(ae, vae, SHARE_TIE),
        f"the classifier is {_pct(ae)} sure of the AE's draws and {_pct(vae)} of the VAE's",
    )


COMPRESSION_BOUNDS = (5.0, 20.0, 100.0)


def _step2(t: pd.DataFrame) -> Answer:
    ratio = float(str(_by(t, "what", "compression", "value")).rstrip("×"))
    choice = sum(ratio >= b for b in COMPRESSION_BOUNDS)
    return Answer(choice, f"the latent holds **{ratio:.1f}×** fewer numbers than the photo")


def _step3(t: pd.DataFrame) -> Answer:
    first, last = float(t.psnr_db.iloc[0]), float(t.psnr_db.iloc[-1])
    choice = _cmp(first, last, st.PSNR_TIE_DB)  # 0: first higher, i.e. PSNR went down
    return Answer(
        choice,
        f"PSNR **{first:.2f} dB** after one round trip, **{last:.2f} dB** after {len(t)}",
    )


KL_ROW = "KL to N(0,1) (nats)"


def _step4(t: pd.DataFrame) -> Answer:
    values = dict(zip(t.statistic, t.value, strict=True))
    if KL_ROW not in values:  # a VQ model: no N(0, 1) prior to be close to
        return Answer(
            None,
            f"this is {values.get('kind', 'a VQ autoencoder')}: its decoder sees codebook "
            "entries, so there is no N(0, 1) prior to be close to",
        )
    kl = float(values[KL_ROW])
    return Answer(
        0 if kl <= st.NEAR_GAUSSIAN_KL else 1,
        f"KL to N(0, 1) is **{kl:.3f} nats** (close means at most {st.NEAR_GAUSSIAN_KL:g})",
    )


def _step5(t: pd.DataFrame) -> Answer:
    gap = float(t.psnr_db.iloc[2])
    return Answer(
        0 if gap >= st.DOUBLE_EXPOSURE_DB else 1,
        f"the halfway frame is **{gap:.1f} dB** from the crossfade's (a double exposure "
        f"would be {st.DOUBLE_EXPOSURE_DB:g} dB or more)",
    )


def _step6(t: pd.DataFrame) -> Answer:
    flip = float(_by(t, "change", "mirror image (flip)", "distance"))
    hue = float(_by(t, "change", "hue turned 180°", "distance"))
    return Answer(
        _cmp(flip, hue, SHARE_TIE),
        f"the mirror image moves the latent **{_pct(flip)}** of the way to an unrelated photo, "
        f"the 180° hue turn **{_pct(hue)}**",
    )


READINGS = ("source", "appearance", "meaning")  # step 7's choices, in order


def _step7(t: pd.DataFrame) -> Answer:
    rows = t[(t.space == "vae") & t.labels.isin(READINGS)]
    score = {str(r.labels): float(r.knn5) for r in rows.itertuples()}
    ranked = sorted(READINGS, key=lambda k: -score[k])  # stable: ties keep the choices' order
    best = ranked[0]
    names = {"source": "own photo", "appearance": "palette", "meaning": "meaning"}
    text = ", ".join(f"{names[k]} **{_pct(score[k])}**" for k in ranked)
    tied = [k for k in ranked[1:] if score[best] - score[k] <= KNN_TIE]
    if tied:
        text += f" ({names[best]} ahead by {KNN_TIE:.0%} or less: nearly a tie)"
    return Answer(READINGS.index(best), f"the 5-neighbour vote finds {text}")


QUESTIONS: dict[int, Question] = {
    1: Question(
        "Decode random draws from N(0, I): whose will the digit classifier be surer are digits?",
        ("the AE's", "the VAE's", "about the same (within 2 points)"),
        _step1,
    ),
    2: Question(
        "How many times fewer numbers will the latent hold than the photo?",
        ("fewer than 5×", "5× to 20×", "20× to 100×", "100× or more"),
        _step2,
    ),
    3: Question(
        "Round-trip the photo three times. After the third, will PSNR be lower than after the "
        "first, about the same, or higher?",
        ("lower", "higher", f"about the same (within {st.PSNR_TIE_DB:g} dB)"),
        _step3,
    ),
    4: Question(
        "Will the astronaut's latent values be distributed close to N(0, 1)?",
        (
            f"close to N(0, 1) (KL at most {st.NEAR_GAUSSIAN_KL:g} nats)",
            "far from N(0, 1)",
        ),
        _step4,
    ),
    5: Question(
        "Will the halfway frame of the latent path look like a plain double exposure (the "
        "crossfade's halfway frame)?",
        ("yes: nearly the same picture", "no: visibly different"),
        _step5,
    ),
    6: Question(
        "Will a mirror image move the VAE latent more or less than a 180° hue change?",
        ("more", "less", "about the same (within 2 points)"),
        _step6,
    ),
    7: Question(
        "What will an image's 5 nearest neighbours in the VAE latent get right most often?",
        (
            "its own photo (its other recolourings)",
            "its palette (among other photos)",
            "its meaning (among other photos)",
        ),
        _step7,
    ),
}


def answer(n: int, result: st.StepResult) -> Answer:
    """Step ``n``'s result -> the choice its numbers support."""
    return QUESTIONS[n].judge(result.table)


def choice_label(n: int, choice: int | None) -> str:
    """``"B. less"``, or a sentence where the question does not apply."""
    if choice is None:
        return "none of them: the question does not apply to this model"
    return QUESTIONS[n].labels()[choice]


def parse_prediction(n: int, value: str | None) -> int | None:
    """A shown choice (``"B. less"``), or just its letter -> its index; None for no prediction."""
    if not value:
        return None
    labels = QUESTIONS[n].labels()
    text = str(value).strip()
    for i, label in enumerate(labels):
        if text == label or text.upper() == LETTERS[i]:
            return i
    return None


def reveal(
    n: int,
    got: Answer,
    model: str,
    prediction: str | None = None,
    others: Mapping[str, Answer] | None = None,
) -> str:
    """The answer as shown with the result (markdown): the choice this run's numbers support
    and the numbers, then the class's prediction against it, then how the other models in
    ``others`` (model name -> its answer) answered: the same, or, said so, differently."""
    where = "the playground's AE and VAE" if n == 1 else f"**{model}**"
    text = (
        f"**The answer, from this run.** With {where}, {got.evidence}: the numbers support "
        f"**{choice_label(n, got.choice)}**."
    )
    guess = parse_prediction(n, prediction)
    if guess is not None:
        text += f" The class predicted *{choice_label(n, guess)}*: " + (
            "this run agrees." if guess == got.choice else "not what this run gave."
        )
    others = {m: a for m, a in (others or {}).items() if m != model}
    differ = {m: a for m, a in others.items() if a.choice != got.choice}
    same = sorted(set(others) - set(differ))
    for m, a in sorted(differ.items()):
        text += (
            f" **{m}** answers differently: {a.evidence}, which supports "
            f"*{choice_label(n, a.choice)}*."
        )
    if same:
        text += f" {', '.join(f'**{m}**' for m in same)} gave the same answer."
    return text
