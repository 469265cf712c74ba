"""The UNet sweep's words (no gradio here, so the CLI prints the same sentences): the cost said
before a run, the prompt experiment read from the sweep table, the panel titles."""

from __future__ import annotations

from explorer.atlas.sweep import PromptReading, SweepPlan
from explorer.core.safe_text import display_name, escape_markdown
from explorer.spaces import unet_blocks

GAP = 0.10
"""A difference of scores smaller than this (10 points) is read as "about the same"."""
ASSUMED_GPU_TFLOPS = 200.0
"""The rate a GPU estimate assumes: about 20 % of an H100/H200's dense fp16 peak, what the app's
VAE encode sustained there (bench/gpu_README.md)."""

PROMPT_TITLES = {
    "empty": "(a) empty prompt",
    "neutral": f'(b) neutral caption "{unet_blocks.NEUTRAL_CAPTION}"',
    "label": f'(c) "{unet_blocks.LABEL_TEMPLATE}" (leaks the label)',
}
PANEL_TITLES = {
    "empty": "(a) empty prompt\n ",
    "neutral": f'(b) neutral caption\n"{unet_blocks.NEUTRAL_CAPTION}"',
    "label": f'(c) "{unet_blocks.LABEL_TEMPLATE}"\nleaks the label',
}
"""The heatmaps' titles (two lines each)."""
METRIC_NAMES = {"probe": "linear probe", "knn5": "5-NN vote"}


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _flop(x: float) -> str:
    for scale, unit in ((1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP")):
        if x >= scale:
            return f"{x / scale:,.1f} {unit}"
    return f"{x / 1e6:,.1f} MFLOP"


def _n(k: int, word: str) -> str:
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


def _points(d: float) -> str:
    return f"{abs(d) * 100:.0f} points"


def cost_sentence(plan: SweepPlan, n: int, cost: unet_blocks.Cost) -> str:
    """What the sweep will run and cost, one paragraph (plain text)."""
    passes = (
        f"{n:,} images × {_n(len(plan.timesteps), 'timestep')} × {_n(plan.seeds, 'noise draw')}"
        f" × {_n(len(plan.prompts), 'prompt')} = {cost.passes:,} UNet passes, each through "
        f"{cost.deepest} ({cost.per_pass_flops / 1e9:,.1f} GFLOP per image per timestep and draw; "
        f"{_flop(cost.flops)} in all; hooks on {len(plan.blocks)} blocks in each pass)"
    )
    if cost.seconds is not None:
        when = f"on this CPU about {cost.seconds:,.0f} s (the model's rough CPU figure, scaled by FLOPs)"
    else:
        when = (
            f"on a GPU about {cost.flops / (ASSUMED_GPU_TFLOPS * 1e12):,.0f} s at an assumed "
            f"{ASSUMED_GPU_TFLOPS:.0f} TFLOP/s"
        )
    return f"The sweep runs {passes}: {when}."


def _cell(c) -> str:
    return f"**{c.block} at t={c.timestep}** ({_pct(c.score)})"


def leak_note(main_labels: str) -> str:
    """The plain warning that prompt (c) contains the answer."""
    return (
        f"**(c) leaks the label by construction.** Each image's caption is "
        f'"{unet_blocks.LABEL_TEMPLATE.format(label="…its own " + escape_markdown(main_labels) + "…")}", '
        "so the UNet is handed the answer through CLIP's text encoder, and a probe can read it "
        "off the features whatever the UNet makes of the pixels. A high score under (c) "
        "measures what the text brings in, not what the model sees in the image; (a) and (b) "
        "are the image's own share."
    )


def reading_markdown(
    r: PromptReading, *, main_labels: str, model: str, n_images: int, seeds: int
) -> str:
    """A :class:`~explorer.atlas.sweep.PromptReading` -> the panel's sentences (Markdown), every
    number from the reading."""
    name = METRIC_NAMES.get(r.metric, r.metric)
    labels = escape_markdown(display_name(r.labels, max_chars=40))
    lines = [
        f"**{escape_markdown(display_name(model, max_chars=60))}, {n_images:,} images, "
        f"{seeds} noise draw{'s' if seeds != 1 else ''} per cell**: the {name} on *{labels}* "
        f"(chance {_pct(r.chance)})."
    ]
    parts = [f"{PROMPT_TITLES[p].split(' (leaks')[0]}: best {_cell(c)}" for p, c in r.best.items()]
    if parts:
        lines.append("Best cell per prompt — " + "; ".join(parts) + ".")
    if "empty" in r.best:
        e = r.best["empty"]
        if e.score - r.chance < GAP:
            lines.append(
                f"With the empty prompt no cell beats chance by {_points(GAP)} or more: on this "
                "set the pooled features carry little of this labelling."
            )
        if r.default_cell is not None:
            lines.append(
                f"The atlas's default UNet space (mid block, t=200) scores "
                f"{_pct(r.default_cell.score)} here; the best empty-prompt cell is "
                f"{e.block} at t={e.timestep}."
            )
    if len(r.by_timestep) >= 2:
        ts = sorted(r.by_timestep)
        first, last = r.by_timestep[ts[0]], r.by_timestep[ts[-1]]
        if last < first - GAP:
            trend = f"falls by {_points(last - first)}"
        elif last > first + GAP:
            trend = f"rises by {_points(last - first)}"
        else:
            trend = f"stays within {_points(GAP)}"
        lines.append(
            f"Along the noise (empty prompt, best block at each timestep) the score {trend}: "
            f"{_pct(first)} at t={ts[0]}, {_pct(last)} at t={ts[-1]}."
        )
    if "neutral" in r.best and "empty" in r.best:
        d = r.best["neutral"].score - r.best["empty"].score
        lines.append(
            f"The neutral caption moves the best score by {'+' if d >= 0 else '−'}{_points(d)}."
            if abs(d) >= GAP
            else f"The neutral caption changes the best score by less than {_points(GAP)}."
        )
    if "label" in r.best:
        base = max((r.best[p].score for p in ("empty", "neutral") if p in r.best), default=None)
        if base is not None:
            gain = r.best["label"].score - base
            if gain >= GAP:
                lines.append(
                    f"**The label caption lifts the best score by {_points(gain)}** (to "
                    f"{_pct(r.best['label'].score)}): what the probe reads there came in through "
                    "CLIP's text encoder, not from the image — the point of Braunstein, Toneva "
                    "& Ilg, measured on this set."
                )
            elif gain <= -GAP:
                lines.append(f"The label caption lowers the best score by {_points(gain)}.")
            else:
                lines.append(
                    f"The label caption changes the best score by less than {_points(GAP)}: "
                    "on this model and set the caption's label barely reaches the pooled features."
                )
        if r.labels != main_labels:
            lines.append(
                f"(The captions name each image's *{escape_markdown(main_labels)}* label, not "
                f"its *{labels}* one.)"
            )
        lines.append(leak_note(main_labels))
    return "\n\n".join(lines)


def reference_lines(result, labels: str, metric: str) -> list[tuple[str, float]]:
    """The reference spaces' ``metric`` for ``labels`` in a :class:`SweepResult`, as
    ``(name, score)`` pairs for the heatmap's scale."""
    refs = result.references
    if refs is None or refs.empty:
        return []
    rows = refs[refs["labels"] == labels]
    return [
        (display_name(r.space, max_chars=24), float(getattr(r, metric))) for r in rows.itertuples()
    ]


def sweep_figure(result, labels: str, metric: str = "probe"):
    """A :class:`~explorer.atlas.sweep.SweepResult` -> the block × timestep heatmaps of ``metric``
    for labelling ``labels``, one per prompt, the reference spaces and chance on the scale."""
    from explorer.atlas.sweep import grid, prompt_reading
    from explorer.images import matrices

    values, prompts, blocks, timesteps = grid(result.table, labels, metric)
    reading = prompt_reading(result.table, labels, metric)
    name = METRIC_NAMES.get(metric, metric)
    return matrices.sweep_heatmap(
        values,
        panels=[PANEL_TITLES[p] for p in prompts],
        blocks=blocks,
        timesteps=timesteps,
        references=reference_lines(result, labels, metric),
        chance=reading.chance,
        title=(
            f"{name} accuracy on “{display_name(labels, max_chars=40)}” by UNet block and "
            f"timestep\n{display_name(result.plan.unet, max_chars=40)}, {result.n_images} images, "
            f"{result.plan.seeds} noise draw{'s' if result.plan.seeds != 1 else ''} per cell"
        ),
        label=f"{name} accuracy",
    )
