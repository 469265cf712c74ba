"""The atlas's evidence in words: the linear probes, where each space stands against the
weight-free controls, what a selection shares, and where two spaces disagree. Every number
quoted is read from the tables and summaries of :mod:`explorer.atlas.evidence`; every name a
user could have chosen (labels, model names) is escaped for Markdown."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from explorer.analysis.probe import MAX_TRAIN, PCA_WIDTH
from explorer.atlas import Atlas, Verdict
from explorer.atlas import evidence as ev
from explorer.core.safe_text import display_name, escape_markdown
from explorer.spaces.baselines import PIXELS_SIDE

__all__ = [
    "CONTROLS_INTRO",
    "PROBE_HELP",
    "controls_markdown",
    "evidence_markdown",
    "overlap_markdown",
    "probe_markdown",
    "reconciled_markdown",
    "selection_markdown",
]

CONTROLS_INTRO = (
    "**Controls** — *Pixels*, *Colour* and *Texture* need no model: they are what raw pixels "
    f"({PIXELS_SIDE}×{PIXELS_SIDE}), the palette (a colour histogram) and edges (HOG) alone "
    "give. A space that scores like them knows nothing, for that labelling, that raw pixels "
    "don't."
)
PROBE_HELP = {
    "probe": "A linear classifier (logistic regression on standardised features, at most "
    f"{PCA_WIDTH} principal axes, the same for every space) trained on the other folds: the "
    "share of held-out images whose label it names (folds split by group where the set groups "
    "its images).",
    "probe_chance": "What always answering the training folds' commonest label scores on the "
    "same folds.",
    "probe_spread": "The standard deviation of the probe's accuracy over its folds.",
    "probe_folds": "How many folds the probe used (fewer where a class has few images or photos).",
    "probe_note": "Why there is no probe score, or that some folds did not converge.",
}
"""The probe columns of the metrics table, for the tab's column help."""
GIVES = {
    "pixels": ("raw pixels", True),
    "colour": ("the palette", False),
    "texture": ("edges and texture", True),
}
"""What each control stands for, in a sentence, and whether the phrase is plural."""

WHERE = {"above": "above", "level": "level with", "below": "below"}
"""A :class:`~explorer.atlas.evidence.ControlReading`'s position, as words before a control."""


def _name(text: object, n: int = 60) -> str:
    return escape_markdown(display_name(text, max_chars=n))


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _pm(score: float, spread: float) -> str:
    """0.232, 0.041 -> '23 % ± 4' (the spread in percentage points)."""
    return f"{_pct(score)} ± {100 * spread:.0f}"


def _family(key: str) -> str:
    return key.rstrip("0123456789")


def _title(titles: dict[str, str], key: str) -> str:
    return _name(titles.get(key, key))


def probe_markdown(table: pd.DataFrame, titles: dict[str, str], grouped: dict[str, bool]) -> str:
    """The metrics table's probe columns -> a paragraph: per labelling (the keys of
    ``grouped``, True where its folds are split by group), each space's probe accuracy ± its
    fold spread and the probe's chance; the labellings it could not score and why; folds that
    did not converge ("" without probe columns)."""
    if table.empty or "probe" not in table.columns:
        return ""
    lines = []
    notes = []
    for name, by_group in grouped.items():
        rows = table[table["labels"] == name]
        if rows.empty:
            continue
        scored = rows[rows["probe"].notna()]
        if scored.empty:
            reason = str(rows["probe_note"].iloc[0] or "it cannot be scored")
            lines.append(f"- *{_name(name)}*: no probe score: {_name(reason, 200)}.")
            continue
        parts = [
            f"**{_title(titles, r.space)}** {_pm(r.probe, r.probe_spread)}"
            for r in scored.itertuples(index=False)
        ]
        folds = int(scored["probe_folds"].iloc[0])
        chance = float(scored["probe_chance"].iloc[0])
        split = f"{folds} folds split by group" if by_group else f"{folds} folds"
        lines.append(
            f"- *{_name(name)}*: " + " · ".join(parts) + f" (chance {_pct(chance)}, {split})"
        )
        for r in rows.itertuples(index=False):
            if r.probe_note and not math.isnan(r.probe):
                notes.append(
                    f"{_title(titles, r.space)} on *{_name(name)}*: {_name(r.probe_note, 200)}"
                )
    if not lines:
        return ""
    split = (
        "; folds split by group where the set groups its images, so no image's versions sit "
        "in both training and test"
        if any(grouped.values())
        else ""
    )
    head = (
        f"**Linear probe** — a logistic regression trained on the other folds "
        f"(standardised features, at most {PCA_WIDTH} principal axes, the same for every "
        f"space; at most {MAX_TRAIN:,} training images a fold{split}) names the label of "
        "this share of held-out images, ± its spread over folds:"
    )
    text = head + "\n" + "\n".join(lines)
    if notes:
        text += (
            "\n\nNot converged (the score is shown, read it with care): " + "; ".join(notes) + "."
        )
    return text


def controls_markdown(readings: Sequence[ev.ControlReading], titles: dict[str, str]) -> str:
    """:func:`explorer.atlas.evidence.control_readings` -> one line per (labelling, model space)
    saying whether it scores above, level with or below the best control ("" for none)."""
    if not readings:
        return ""
    lines = []
    for r in readings:
        space, control = _title(titles, r.space), _title(titles, r.control)
        gives, plural = GIVES.get(_family(r.control), ("the control", False))
        what = "probe" if r.measure == "probe" else "5-NN vote"
        if r.measure == "probe":
            mine, theirs = _pm(r.score, r.spread), _pm(r.control_score, r.control_spread)
        else:
            mine, theirs = _pct(r.score), _pct(r.control_score)
        label = _name(r.labelling)
        do, tell = ("don't", "tell") if plural else ("doesn't", "tells")
        if r.position == "above":
            end = f"it holds something about *{label}* that {gives} alone {do}"
        elif r.position == "level":
            end = f"by this {what} it shows nothing about *{label}* that {gives} alone {do}"
        else:
            end = f"{gives} alone {tell} *{label}* apart better"
        lines.append(
            f"- *{label}*: **{space}** ({mine}) scores {WHERE[r.position]} the best control, "
            f"**{control}** ({theirs}; chance {_pct(r.chance)}; a difference counts past "
            f"{100 * r.margin:.0f} points): {end}."
        )
    n = readings[0].n
    return (
        "**Against the controls** — above or below means by more than "
        f"{ev.SIGMAS:g} standard errors of the difference (each score is a share of the "
        f"{n:,} images, each scored once) and at least {100 * ev.LEVEL:.0f} points:\n"
        + "\n".join(lines)
    )


def reconciled_markdown(
    table: pd.DataFrame,
    titles: dict[str, str],
    labelling: str,
    n: int,
    readings: Sequence[ev.ControlReading] = (),
) -> str:
    """Where the 5-NN vote reads as chance on ``labelling`` but a linear probe does not: one
    sentence saying both, with the probes' numbers, and, for each such model space that the
    ``readings`` place against a control's probe, where it stands ("" without such a probe)."""
    found = ev.probes_above_chance(table, labelling, n)
    if not found:
        return ""
    parts = [f"**{_title(titles, s)}** {_pct(p)} (chance {_pct(c)})" for s, p, c in found]
    text = (
        f"The neighbour vote finds no grouping by *{_name(labelling)}*, yet a linear probe "
        f"names it above chance in {', '.join(parts)}: the label can be read off these features "
        "along some direction, but images that share it are not near one another."
    )
    above = {s for s, _, _ in found}
    against = [
        r
        for r in readings
        if r.labelling == labelling and r.measure == "probe" and r.space in above
    ]
    for r in against:
        space, control = _title(titles, r.space), _title(titles, r.control)
        gives, plural = GIVES.get(_family(r.control), ("the control", False))
        end = (
            f"a direction {gives} alone {'do' if plural else 'does'} not give"
            if r.position == "above"
            else f"no more than {gives} alone {'give' if plural else 'gives'}"
        )
        text += (
            f" By the same probe **{space}** ({_pct(r.score)}) is {WHERE[r.position]} the best "
            f"control, **{control}** ({_pct(r.control_score)}): {end}."
        )
    return text


def evidence_markdown(
    atlas: Atlas, table: pd.DataFrame, titles: dict[str, str], verdict: Verdict | None = None
) -> str:
    """The paragraphs the verdict gains (each starting with two newlines; "" when there is
    nothing to add): the probes, where the ``verdict`` (the 5-NN reading) and the probes
    disagree, the controls' reading, and a hint when no control is open."""
    names = atlas.images.labeling_names
    grouped = {name: atlas.images.groups_for(name) is not None for name in names}
    text = ""
    probes = probe_markdown(table, titles, grouped)
    if probes:
        text += "\n\n" + probes
    readings = ev.control_readings(table, names, len(atlas.images))
    if verdict is not None and not (
        verdict.single_label or verdict.small_classes or verdict.above_chance
    ):
        both = reconciled_markdown(table, titles, verdict.labeling, len(atlas.images), readings)
        if both:
            text += "\n\n" + both
    controls = controls_markdown(readings, titles)
    has_control = any(s.control for s in atlas.spaces)
    has_model = any(not s.control for s in atlas.spaces)
    if controls:
        text += "\n\n" + controls
    elif has_model and not has_control and not table.empty:
        text += (
            "\n\nNo control is open: tick *Pixels*, *Colour* or *Texture (control)* to see "
            "whether these numbers beat what raw pixels alone give."
        )
    return text


def selection_markdown(
    summary: ev.SelectionSummary, titles: dict[str, str], shown: int | None = None
) -> str:
    """A :class:`~explorer.atlas.evidence.SelectionSummary` -> what the selection shares under
    each labelling and how many neighbourhoods it falls into in each space. ``shown``: how many
    of its images the gallery shows."""
    if summary.size == 0:
        return "Nothing selected: draw a lasso or a box in any panel (the tools above each panel)."
    n = summary.size
    where = f" in **{_title(titles, summary.source)}**" if summary.source else ""
    text = f"**The {n:,} image{'s' * (n != 1)} you selected{where}:** "
    parts = []
    for name, sh in summary.shares.items():
        value = _name(sh.top, 40)
        if sh.distinct == 1:
            parts.append(f"all {n:,} share *{_name(name)}* “{value}”")
        elif sh.count == 1:
            parts.append(f"no two share *{_name(name)}* ({sh.distinct:,} different)")
        else:
            parts.append(
                f"{sh.count:,} share *{_name(name)}* “{value}” ({sh.distinct:,} different in all)"
            )
    text += "; ".join(parts) + "."
    if n > 1 and summary.spread:
        spread = [f"{_title(titles, key)} {c:,}" for key, c in summary.spread.items()]
        text += (
            f" Separate neighbourhoods they form (joined through each image's {ev.K} nearest "
            f"neighbours, near-copies included; 1 = all together, {n:,} = all apart): "
            + ", ".join(spread)
            + "."
        )
    if shown is not None and shown < n:
        text += f" The gallery shows {shown:,} of them."
    return text


def overlap_markdown(
    atlas: Atlas,
    a: str,
    b: str,
    values: np.ndarray,
    changed: Sequence[tuple[int, float]],
) -> str:
    """The per-point overlap of spaces ``a`` and ``b`` -> the sentence above the images that
    change most: the mean share kept (their mutual k-NN), how many images keep none and all."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "Too few images to compare neighbours."
    ta = _name(atlas.space(a).title.split(" · ")[0])
    tb = _name(atlas.space(b).title.split(" · ")[0])
    k = min(ev.K, len(atlas.images) - 1)
    none = int(np.sum(finite == 0))
    every = int(np.sum(finite == 1))
    own = (
        " (each image's own group left out, as in the metrics)"
        if ev.lists_leave_groups_out(atlas)
        else ""
    )
    text = (
        f"**Where {ta} and {tb} disagree** — the panels are coloured by the share of each image's "
        f"{k} nearest neighbours{own} found in both: on average {_pct(float(finite.mean()))} "
        f"(their mutual {k}-NN). {none:,} of {finite.size:,} images share none of them, "
        f"{every:,} share all {k}."
    )
    if changed:
        lowest = changed[0][1]
        text += (
            f" Below: the {len(changed)} that change most (least shared first, from "
            f"{_pct(lowest)}). Colour by a labelling again to go back."
        )
    return text
