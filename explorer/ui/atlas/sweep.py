"""The atlas tab's UNet sweep panel: the open set through every block of the UNet at several
timesteps and prompts (:mod:`explorer.atlas.sweep`), its heatmaps, the prompt experiment's
sentences (:mod:`.sweep_views`) and a button that opens the atlas's UNet panel at a chosen
(block, timestep). :func:`panel` makes the components inside the tab; :func:`wire` binds them
once the tab's own components exist."""

from __future__ import annotations

import time
from dataclasses import dataclass

import gradio as gr

from explorer import atlas
from explorer.analysis import projection
from explorer.atlas import sweep
from explorer.core import files, public
from explorer.core.errors import ExplorerError
from explorer.datasets import ImageSet
from explorer.models import registry
from explorer.spaces import baselines, cache, unet_blocks
from explorer.ui.atlas import handlers
from explorer.ui.atlas.sweep_views import (
    PROMPT_TITLES,
    cost_sentence,
    reading_markdown,
    sweep_figure,
)
from explorer.ui.components import check_space_refs, listen, progress_adapter, user_errors

MAX_PUBLIC_PASSES = 12_000
"""Public mode: the most UNet passes one sweep may ask for (the teaching set's full sweep is
9,408)."""
SWEEP_INTRO = """
### Where meaning lives inside the UNet
Run the open set through **every block** of the UNet at several noise levels, each cell scored
by a linear probe and the 5-neighbour vote (same-photo neighbours left out, as in the table
above), under three prompts: the empty one, a neutral caption, and a caption that **names each
image's label** — which puts the answer into the text on purpose (the lesson of *CLIP is All You
Need*: Braunstein, Toneva & Ilg). The lines on the scale are the atlas's other spaces and three
weight-free baselines on the same set.
"""


@dataclass
class SweepPanel:
    """The panel's components (see :func:`panel`)."""

    timesteps: gr.CheckboxGroup
    seeds: gr.Slider
    prompts: gr.CheckboxGroup
    run: gr.Button
    status: gr.Markdown
    labels: gr.Dropdown
    metric: gr.Radio
    plot: gr.Plot
    reading: gr.Markdown
    cell: gr.Dropdown
    open: gr.Button
    table: gr.Dataframe
    csv: gr.File


def panel(visible: bool) -> SweepPanel:
    """The sweep panel's components, inside the open atlas tab (hidden where no UNet is usable)."""
    with gr.Column(visible=visible, elem_id="atlas-sweep"):
        gr.Markdown(SWEEP_INTRO)
        with gr.Row():
            timesteps = gr.CheckboxGroup(
                [str(t) for t in sweep.DEFAULT_TIMESTEPS],
                value=[str(t) for t in sweep.DEFAULT_TIMESTEPS],
                label="Timesteps (of 1000)",
                scale=3,
            )
            seeds = gr.Slider(
                1, 4, value=4, step=1, label="Noise draws per cell", scale=1,
                elem_id="atlas-sweep-seeds",
            )  # fmt: skip
        prompts = gr.CheckboxGroup(
            [(PROMPT_TITLES[p], p) for p in unet_blocks.PROMPTS],
            value=list(unet_blocks.PROMPTS),
            label="Prompts",
        )
        run = gr.Button("Run the UNet sweep on the open set")
        status = gr.Markdown(elem_id="atlas-sweep-status")
        with gr.Row():
            labels = gr.Dropdown(["label"], value="label", label="Labelling", interactive=True)
            metric = gr.Radio(
                [("linear probe", "probe"), ("5-NN vote", "knn5")], value="probe", label="Score"
            )
        plot = gr.Plot(elem_id="atlas-sweep-plot", show_label=False)
        reading = gr.Markdown(elem_id="atlas-sweep-reading")
        with gr.Row():
            cell = gr.Dropdown([], label="Open the UNet panel at (empty prompt)", scale=3)
            open_btn = gr.Button("Open the atlas at this block and timestep", scale=1)
        with gr.Accordion("The sweep's numbers (sweep.csv)", open=False):
            table = gr.Dataframe(headers=list(sweep.COLUMNS), interactive=False)
            csv = gr.File(label="sweep.csv")
    return SweepPanel(
        timesteps, seeds, prompts, run, status, labels, metric, plot, reading, cell, open_btn,
        table, csv,
    )  # fmt: skip


# --------------------------------------------------------------------------- handlers


def _references(a: atlas.Atlas) -> dict:
    """The atlas's own spaces (not the UNet) and the weight-free baselines, by display name."""
    out = {s.title.split(" · ")[0]: a.embeddings[s.key] for s in a.spaces if s.family != "unet"}
    for name in baselines.BASELINES:
        out[name] = baselines.baseline_features(name, a.images.images)
    return out


def _compute(image_set: ImageSet, plan: sweep.SweepPlan, refs: dict, progress) -> sweep.SweepResult:
    """The sweep, in this process: the UNet rows that are not cached come from GPU calls on
    ZeroGPU (:func:`explorer.spaces.embed.embed` offloads them); the cache and the scores stay
    here."""
    return sweep.run(
        image_set, plan, cache=cache.shared(), references=refs, progress=progress_adapter(progress)
    )


def _cells(result: sweep.SweepResult) -> list[tuple[str, str]]:
    return [(f"{b} · t={t}", f"{b}@{t}") for t in result.plan.timesteps for b in result.plan.blocks]


def _view(result: sweep.SweepResult, labels: str, metric: str) -> tuple:
    reading = sweep.prompt_reading(result.table, labels, metric)
    text = reading_markdown(
        reading,
        main_labels=result.main_labels,
        model=result.plan.unet,
        n_images=result.n_images,
        seeds=result.plan.seeds,
    )
    best = reading.best.get("empty") or next(iter(reading.best.values()), None)
    cell = gr.update(
        choices=_cells(result), value=f"{best.block}@{best.timestep}" if best else None
    )
    return sweep_figure(result, labels, metric), text, cell


def _plan(unet_model, timesteps, seeds, prompts) -> sweep.SweepPlan:
    name = (unet_model or "").split("@", 1)[0] or None
    if not timesteps:
        raise ExplorerError("Tick at least one timestep for the sweep.")
    if not prompts:
        raise ExplorerError("Tick at least one prompt for the sweep.")
    return sweep.make_plan(
        name, timesteps=[int(t) for t in timesteps], seeds=int(seeds or 1), prompts=list(prompts)
    )


@user_errors("The UNet sweep")
def on_atlas_unet_sweep(
    atlas_id, unet_model, timesteps, seeds, prompts, labels, metric, progress=gr.Progress()
):
    if not atlas_id:
        raise ExplorerError("Open a set first (the teaching set, say): the sweep runs on it.")
    a = atlas.STORE.get(atlas_id)
    public.check_model((unet_model or "").split("@", 1)[0], registry.available_unets())
    plan = _plan(unet_model, timesteps, seeds, prompts)
    cost = sweep.sweep_cost(plan, len(a.images))
    if public.public_mode() and cost.passes > MAX_PUBLIC_PASSES:
        raise public.PublicModeError(
            f"This sweep asks for {cost.passes:,} UNet passes; the public app runs up to "
            f"{MAX_PUBLIC_PASSES:,} per sweep: fewer timesteps, draws or prompts."
        )
    unet_blocks.check_budget(cost, "This sweep")
    note = cost_sentence(plan, len(a.images), cost)
    progress(0, desc=note[:120])
    start = time.perf_counter()
    result = _compute(a.images, plan, _references(a), progress)
    note += f" It took {time.perf_counter() - start:,.0f} s here."
    sweep.STORE.put(atlas_id, result)
    names = a.images.labeling_names
    labels = labels if labels in names else names[0]
    path = files.tmp_path("sweep.csv", area="exports")
    sweep.write_table(result.table, path)
    fig, text, cell = _view(result, labels, metric or "probe")
    return (
        note,
        gr.update(choices=names, value=labels),
        fig,
        text,
        cell,
        result.table,
        str(path),
    )


@user_errors("Showing the sweep")
def on_atlas_sweep_view(atlas_id, labels, metric):
    result = sweep.STORE.get(atlas_id) if atlas_id else None
    if result is None:
        return gr.skip(), gr.skip(), gr.skip()
    return _view(result, labels, metric or "probe")


@user_errors("Opening the UNet panel at that cell")
def on_atlas_sweep_open(atlas_id, cell, method, folder, progress=gr.Progress()):
    result = sweep.STORE.get(atlas_id) if atlas_id else None
    if result is None:
        raise ExplorerError("Run the sweep first: its cells are what this opens.")
    block, _, t = (cell or "").partition("@")
    if block not in result.plan.blocks or not t.isdigit() or int(t) not in result.plan.timesteps:
        raise ExplorerError("Choose one of the sweep's cells (a block and a timestep) first.")
    a = atlas.STORE.get(atlas_id)
    ref = sweep.open_ref(result.plan, block, int(t))
    others = [s.ref for s in a.spaces if s.family != "unet"]
    refs = [*others[: atlas.MAX_SPACES - 1], ref]
    folder = check_space_refs(refs, folder)
    built = atlas.build(
        a.images,
        refs,
        projection.best_available(method),
        folder,
        cache.shared(),
        progress_adapter(progress),
    )
    atlas.STORE.put(built)
    sweep.STORE.put(built.id, result)
    return handlers._atlas_outputs(built, method, f"UNet panel at {block}, t={t}")


def _cleared_run(_error) -> list:
    """A failed sweep: no heatmap or numbers of an earlier one stay beside its sentence."""
    return ["", gr.skip(), None, "", gr.update(choices=[], value=None), None, None]


def wire(p: SweepPanel, *, api, atlas_id, unet_model, method, folder, atlas_outputs) -> None:
    """Bind the panel: one API endpoint (``atlas_unet_sweep``); the rest are UI-only. A failed
    open leaves the atlas as it was and says why in the panel's status line."""
    listen(
        p.run.click,
        api,
        on_atlas_unet_sweep,
        [atlas_id, unet_model, p.timesteps, p.seeds, p.prompts, p.labels, p.metric],
        [p.status, p.labels, p.plot, p.reading, p.cell, p.table, p.csv],
        api_name="atlas_unet_sweep",
        slot=0,
        cleared=_cleared_run,
    )
    for trigger in (p.labels.input, p.metric.input):
        trigger(
            on_atlas_sweep_view,
            [atlas_id, p.labels, p.metric],
            [p.plot, p.reading, p.cell],
            api_name=False,
        )
    listen(
        p.open.click,
        None,
        on_atlas_sweep_open,
        [atlas_id, p.cell, method, folder],
        atlas_outputs,
        slot=None,
        status=p.status,
        cleared=lambda _error: [gr.skip()] * len(atlas_outputs),
    )
