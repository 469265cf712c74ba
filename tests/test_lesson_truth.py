"""The screen says what the numbers and the model say: neighbour lists that follow the metrics'
rule, the hierarchy of what a VAE keeps stated from the run, texts that follow the model that
ran (each kind of model), one offline path through every tab, and the smaller on-screen
defects (colour scales, notices, the wider plane, the export, the CLIP box). Every number a
sentence quotes is re-derived here from the results it was written from."""

from __future__ import annotations

import json
import re
import uuid

import gradio as gr
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from explorer import atlas
from explorer.analysis import metrics
from explorer.datasets import ImageSet
from explorer.images import pictures, plots
from explorer.lab import actions as lab
from explorer.models import registry
from explorer.perturb import measure as perturb_lab
from explorer.ui import availability
from explorer.ui.atlas import handlers as atlas_handlers
from explorer.ui.atlas import views as atlas_views
from explorer.ui.lab import views as lab_views
from explorer.ui.lesson import steps as st
from explorer.ui.lesson import views as lt
from tests.helpers import by_elem_id

RES = 64


def _pcts(text: str) -> list[float]:
    return [int(x) / 100 for x in re.findall(r"(\d+)%", text)]


# --------------------------------------------------------------------------- neighbours


def _grouped_atlas(groups: int = 4, per: int = 7, seed: int = 0) -> atlas.Atlas:
    """A teaching-like set: each group is one photo in ``per`` near-identical versions (so a
    space that knows only the photo ranks its own versions first); meanings cross groups."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (groups, 16))
    g = np.repeat(np.arange(groups), per)
    x = (centres[g] + rng.normal(0, 0.01, (len(g), 16))).astype(np.float32)
    meanings = [f"m{k % 2}" for k in g]
    labelings = {"meaning": meanings, "source": [f"s{k}" for k in g]}
    im = Image.new("RGB", (8, 8))
    images = ImageSet(
        "teaching",
        [im] * len(g),
        meanings,
        [f"p{i}" for i in range(len(g))],
        labelings=labelings,
        groups=list(labelings["source"]),
    )
    return atlas.Atlas(
        uuid.uuid4().hex,
        images,
        [atlas.Space("vae", "vae:x", "vae", "x")],
        {"vae": x},
        thumbs=[f"/tmp/t{i}.jpg" for i in range(len(g))],
    )


def test_neighbours_leave_the_own_photo_out_as_the_metrics_do():
    a = _grouped_atlas()
    groups = a.images.groups
    for i in (0, 9, 27):
        default = [j for j, _ in atlas.neighbours(a, i, 6)["vae"]]
        assert len(default) == 6 and all(groups[j] != groups[i] for j in default)
        kept = [j for j, _ in atlas.neighbours(a, i, 6, own_group=True)["vae"]]
        assert {groups[j] for j in kept} == {groups[i]}  # the 6 other versions of its photo
        # the same list as the metrics' group-aware vote sees: cosine order outside the group
        exclude = np.asarray([g == groups[i] for g in groups])
        idx, _ = metrics.nearest(a.embeddings["vae"], i, 6, exclude)
        assert default == idx.tolist()


def test_neighbour_captions_say_what_was_left_out_and_count_from_the_list():
    a = _grouped_atlas()
    groups, labels = a.images.groups, a.labels
    for own in (False, True):
        res = atlas.neighbours(a, 3, 6, own_group=own)
        (g,) = atlas_handlers._galleries(a, res, 3, own_group=own)[:1]
        hits = [j for j, _ in res["vae"]]
        same = sum(labels[j] == labels[3] for j in hits)
        mine = sum(groups[j] == groups[3] for j in hits)
        caption = g["label"]
        assert f"{same}/6 share its meaning" in caption
        if own:
            assert mine == 6 and f"{mine} of the 6 are that same photo" in caption
            assert "inflate the count" in caption
        else:
            assert (
                mine == 0 and "6 nearest other photos; its own 6 recolourings left out" in caption
            )


def test_an_outside_query_that_is_a_teaching_photo_leaves_that_photo_out(astronaut):
    ts_groups = [
        "skimage:astronaut.png" if k == 0 else f"other{k}" for k in np.repeat(np.arange(4), 7)
    ]
    a = _grouped_atlas()
    a.images.groups = ts_groups
    photo = Image.open(astronaut).convert("RGB")
    assert atlas.query_group(a, photo) == "skimage:astronaut.png"
    assert atlas.query_group(a, Image.new("RGB", (64, 64), (9, 200, 30))) is None
    mask = atlas.group_mask(a, "skimage:astronaut.png")
    assert mask.sum() == 7 and mask[:7].all()


def test_the_teaching_set_opens_coloured_by_its_source_photos():
    from explorer import datasets

    ts = datasets.teaching_set()
    assert atlas.default_colouring(ts) == "source"
    assert ts.labeling("source") == ts.groups
    from explorer.ui.atlas.payload import colour_note, payload

    a = _grouped_atlas()
    a.color_by = atlas.default_colouring(a.images)
    note = colour_note(a)
    assert "each colour is one photo, in its 7 versions" in note
    assert note in json.loads(payload(a, "pca"))["note"]  # drawn under the panels
    a.color_by = "meaning"
    assert "a tight cluster of 7 is usually one photo" in colour_note(a)
    # coloured by two spaces' agreement, the panels say nothing about a labelling's colours
    a.spaces.append(atlas.Space("pixels", "pixels:16x16-rgb", "pixels", "16x16-rgb"))
    a.embeddings["pixels"] = a.embeddings["vae"][::-1].copy()
    a.coords = {}  # drawn again, now with two panels
    a.overlap_pair = ("vae", "pixels")
    drawn = json.loads(payload(a, "pca"))
    assert drawn["overlap"] is not None and drawn["note"] == ""


# --------------------------------------------------------------------------- hierarchy


def _table(rows: list[tuple[str, float, float]], space: str = "vae") -> pd.DataFrame:
    return pd.DataFrame([{"space": space, "labels": n, "knn5": k, "chance": c} for n, k, c in rows])


@pytest.mark.parametrize(
    "rows",
    [
        [("meaning", 0.10, 0.07), ("appearance", 0.88, 0.14), ("source", 1.0, 0.06)],
        [("meaning", 0.60, 0.07), ("appearance", 0.20, 0.14), ("source", 0.95, 0.06)],
    ],
)
def test_hierarchy_is_in_the_order_the_numbers_give_with_their_numbers(rows):
    note = st.hierarchy_note(_table(rows))
    ranked = sorted(rows, key=lambda r: -r[1])
    names = [atlas_views.READING_NAMES[n] for n, _, _ in ranked]
    assert [note.index(n) for n in names] == sorted(note.index(n) for n in names)
    assert _pcts(note)[: 2 * len(rows)] == [
        round(v, 2) for _, k, c in ranked for v in (k, c)
    ]  # knn5 then chance, each re-derived, highest first
    compressor = [n for n, _, _ in ranked] == ["source", "appearance", "meaning"]
    assert ("— the order of a perceptual compressor" in note) == compressor
    assert ("no better than chance" in note) == any(k <= c + 0.10 for _, k, c in rows)


def test_the_atlas_verdict_states_each_space_hierarchy():
    table = pd.concat(
        [
            _table([("meaning", 0.10, 0.07), ("appearance", 0.88, 0.14), ("source", 1.0, 0.06)]),
            _table(
                [("meaning", 0.7, 0.07), ("appearance", 0.3, 0.14), ("source", 1.0, 0.06)], "clip"
            ),
        ]
    )
    v = atlas.verdict(table)
    text = atlas_views.verdict_markdown(v, {"vae": "VAE latents", "clip": "CLIP"})
    vae_line = next(line for line in text.splitlines() if line.startswith("- **VAE"))
    assert _pcts(vae_line) == [1.0, 0.06, 0.88, 0.14, 0.10, 0.07]
    assert vae_line.index("its own photo") < vae_line.index("its palette")
    clip_line = next(line for line in text.splitlines() if line.startswith("- **CLIP"))
    assert clip_line.index("its meaning") < clip_line.index("its palette")


# --------------------------------------------------------------------------- model texts


@pytest.mark.parametrize("model", ["test-kl16", "test-tiny"])
def test_step2_quotes_the_run_channels_and_ratio_and_marks_the_sd_figure(model):
    r = lt.run_step(2, model)
    enc = lab.encode(st._example("astronaut"), model, st.RESOLUTION)
    s = lab.latent_stats(enc)
    c = s.latent.shape[0]
    assert r.notice.startswith(f"{st.NOTICE}With **{model}**")
    assert f"{c} latent channels" in r.notice and f"**{s.ratio:.1f}× fewer numbers**" in r.notice
    assert (f"with {st.SD_VAE}, 4 channels, it would be 48×" in r.notice) == (s.ratio != 48)
    assert st.sd_ratio() == 3 * 64 / registry.REGISTRY[st.SD_VAE].latent_channels == 48
    assert "Stable Diffusion's VAE turns" not in lt.STEPS[2].text


@pytest.mark.parametrize("model", ["test-kl", "test-tiny", "test-vq"])
def test_step4_branches_on_the_kind_of_model(model):
    r = lt.run_step(4, model)
    enc = lab.encode(st._example("astronaut"), model, st.RESOLUTION)
    g = lab.latent_stats(enc).gaussian
    kind = st.model_kind(enc)
    assert kind == {"test-kl": "kl", "test-tiny": "tiny", "test-vq": "vq"}[model]
    assert f"mean **{g['mean']:.2f}**" in r.notice and f"std **{g['std']:.2f}**" in r.notice
    assert "comes from its scaling alone" not in r.notice
    table = dict(zip(r.table.statistic, r.table.value, strict=True))
    assert table["kind"] == st.KIND_WORDS[kind]
    if kind == "vq":
        cb = lab.codes(enc)
        assert f"**{cb.usage.used} of {cb.usage.size}** codes" in r.notice
        assert "KL to N(0,1) (nats)" not in table and "no N(0, 1) prior" in r.notice
        assert len(r.plot.data) == 1  # no N(0, 1) curve
    else:
        kl = g["kl_to_standard_normal"]
        assert f"**{kl:.3f} nats**" in r.notice
        near = "near N(0, 1)" in r.notice.replace("not near N(0, 1)", "")
        assert near == (kl <= st.NEAR_GAUSSIAN_KL)
    if kind == "kl":
        assert "KL term pulling" in r.notice
    if kind == "tiny":
        assert "no KL term" in r.notice and "scale is 1, shift 0" in r.notice


def test_step1_says_honestly_which_samples_the_classifier_prefers():
    r = lt.run_step(1, "unused")
    df = r.table.set_index("model")
    ca, cv = df.sample_confidence["ae"], df.sample_confidence["vae"]
    assert f"{cv:.0%} sure of the VAE's and {ca:.0%} of the AE's" in r.notice
    assert ("*more* sure of the AE's" in r.notice) == (ca >= cv)
    assert "decode to something sensible" not in lt.STEPS[1].text
    assert "×" not in r.notice.split("Reconstruction")[0]  # no "5068× further"
    from explorer.playground import digits as pg
    from explorer.playground import figures as figs
    from explorer.playground.cache import get_trained

    ae = get_trained(pg.TrainConfig("ae"))
    lo, hi = st.latent_spread(figs.latents(ae)[0])
    assert f"**{lo:.1f} to {hi:.1f}**" in r.notice
    n = st.digits_covered(pg.prior_samples(ae, pg.N_PRIOR_SAMPLES, seed=0))
    assert 1 <= n <= 10
    # the two sheets are captioned: a band of text above each, on white
    top = np.asarray(r.image.convert("L"))[:10]
    assert (top < 128).any() and r.image.height > 8 * 4 * 2


def test_step5_halfway_frame_is_the_halfway_one():
    assert st.INTERP_STEPS % 2 == 1 and st.halfway(st.INTERP_STEPS) == (3, 0.5)
    r = lt.run_step(5, "test-tiny")
    assert "t = 0.5" in r.notice and "t = 0.5" in r.table.what.iloc[2]
    assert "straight (spherical)" not in lt.STEPS[5].text


def test_round_trip_of_a_model_without_posterior_says_so(astronaut):
    rt = lab.roundtrip(astronaut, "test-tiny", RES)
    assert rt.source == "latent"
    text = lab_views.roundtrip_summary(rt)
    assert "posterior mean" not in text and "has no posterior" in text


def test_compare_with_the_only_usable_model_says_so(astronaut):
    c = lab.compare(astronaut, "test-tiny", "test-tiny", RES)
    note = lab_views.compare_note(c, usable=["test-tiny"])
    assert "**Both sides are test-tiny**" in note and "only VAE that runs here" in note
    other = lab.compare(astronaut, "test-tiny", "test-kl", RES)
    note = lab_views.compare_note(other, usable=["test-tiny", "test-kl"])
    assert f"PSNR {lab_views.fmt_db(other.b.psnr)} dB" in note


# --------------------------------------------------------------------------- offline


def test_progress_lines_name_no_internal_ids(astronaut):
    seen: list[str] = []
    photo = Image.open(astronaut).convert("RGB")
    perturb_lab.measure(photo, ["vae:test-tiny"], None, None, lambda f, d: seen.append(d), 64)
    assert seen and not any("vae:" in d for d in seen)
    assert any("VAE (test-tiny)" in d for d in seen)


def test_perturbations_say_the_download_command_once(no_models, astronaut):
    photo = Image.open(astronaut).convert("RGB")
    spaces = ["vae:taesd", "clip:clip-vit-b32", "dino:dinov2-small"]
    with pytest.raises(Exception) as err:
        perturb_lab.measure(photo, spaces, None, None, None, 64)
    text = str(err.value)
    assert text.count(availability.DOWNLOAD_CMD) == 1
    assert all(perturb_lab.space_title(s) in text for s in spaces)


def test_the_notice_is_one_line_once_a_vae_runs():
    text = availability.notice_markdown("lab")
    assert availability.usable_vaes() and text and "\n" not in text
    assert text.count(availability.DOWNLOAD_CMD) == 1


def _demo():
    from explorer.ui.app import build_demo

    return build_demo()


def test_a_scanned_folder_reaches_every_tab(no_models, taef2_dir):
    demo = _demo()
    scan = by_elem_id(demo, availability.FOLDER_ID)
    follow = next(
        d
        for d in demo.fns.values()
        if d.inputs and d.inputs[0] is scan and d.fn.__name__ == "fn" and len(d.outputs) > 10
    )
    lesson_state = follow.inputs[1]
    lists = follow.inputs[2:]
    assert len(lists) == 3  # the lesson's model selector, the atlas's and perturbations' lists
    # before: nothing runs, every notice says so at length, the lesson's model is missing
    for need in ("lesson", "lab", "atlas", "perturb"):
        text = by_elem_id(demo, f"offline-notice-{need}-text").value
        assert text.startswith("**No "), need
    assert not registry.is_usable(lesson_state.value["model"])
    out = follow.fn(str(taef2_dir), lesson_state.value, *(dd.value for dd in lists))
    state, line, *rest = out
    assert state == {"model": "local:taef2", "folder": str(taef2_dir)}
    assert "**local:taef2**" in line
    notices, dropdowns = rest[:-3], rest[-3:]
    texts = notices[1::3]
    assert len(texts) == 4 and all("`local:taef2` (local checkpoint)" in t["value"] for t in texts)
    assert all("\n" not in t["value"] for t in texts)  # one line once something runs
    assert all(b["visible"] is False for b in notices[2::3])  # no big button then
    for dd in dropdowns:
        assert dd["value"] == "local:taef2" and "local:taef2" in dd["choices"]
    assert by_elem_id(demo, "offline-notice-lesson").visible  # Start here has the notice too


def test_a_failing_step_stays_in_place(no_models):
    demo = _demo()
    note = by_elem_id(demo, "lesson-note-2")
    dep = next(
        d
        for d in demo.fns.values()
        if d.outputs and note in d.outputs and d.api_visibility == "private"
    )
    out = dep.fn({"model": "taesd", "folder": ""}, {}, None)
    *shown, said, record = out
    assert said.startswith("> **⚠ Not done.**") and availability.DOWNLOAD_CMD in said
    assert all(v is None for v in shown)  # no earlier result left beside it, no toast
    assert record == gr.skip()  # the class record keeps the steps that did run


def test_no_clip_text_box_when_clip_cannot_run(no_models):
    demo = _demo()
    title = next(
        b for b in demo.blocks.values() if getattr(b, "value", None) == "### Text search (CLIP)"
    )
    assert title.visible is False


def test_after_an_open_the_text_box_follows_the_atlas_spaces():
    a = _grouped_atlas()
    atlas.STORE.put(a)
    toggle, *text = atlas_handlers.on_atlas_opened(a.id)
    assert toggle["visible"] is True and all(t["visible"] is False for t in text)


# --------------------------------------------------------------------------- smaller defects


@pytest.mark.parametrize("channels", [4, 32])
def test_per_channel_scale_has_one_readable_bar_and_bounds_in_titles(channels):
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1, (channels, 6, 6)) * np.arange(1, channels + 1)[:, None, None]
    fig = plots.channel_grid(z.astype(np.float32), shared_scale=False)
    assert sum(bool(t.showscale) for t in fig.data) == 1
    titles = [a.text for a in fig.layout.annotations][:channels]
    for i, t in enumerate(fig.data):
        assert titles[i] == f"ch {i} · ±{np.abs(z[i]).max():.2g}"
        assert np.abs(np.asarray(t.z)).max() == pytest.approx(1.0, rel=1e-5)


def test_error_maps_carry_a_colour_bar_in_pixel_units(astronaut):
    rt = lab.roundtrip(astronaut, "test-tiny", RES)
    a = np.abs(
        np.asarray(rt.original, np.float64) - np.asarray(rt.reconstruction, np.float64)
    ).mean(axis=2)
    assert rt.error_vmax == pytest.approx(np.percentile(a / 255, 99), rel=1e-4)
    shown = lab_views.error_picture(rt.error, rt.error_vmax)
    assert shown.width == rt.error.width and shown.height > rt.error.height
    bar = np.asarray(shown)[rt.error.height + 4]
    assert tuple(bar[0]) == tuple(pictures.INFERNO_LUT[0])
    assert tuple(bar[-1]) == tuple(pictures.INFERNO_LUT[255])
    assert f"{rt.error_vmax * 255:.0f}/255" in lab_views.roundtrip_summary(rt)


def test_edit_note_gives_the_difference_scale_in_pixel_levels(astronaut):
    ed = lab.edit(astronaut, "test-tiny", 0, "scale", 2.0, 0, RES)
    note = lab_views.edit_note(ed)
    levels = ed.difference_vmax * 255
    want = f"{levels:.1f}/255" if levels < 9.95 else f"{levels:.0f}/255"
    assert f"drawn brightest at {want}" in note
    assert "scaled to its own 99th percentile" not in note


def test_the_wider_plane_spans_the_ae_latents():
    from explorer.playground import digits as pg
    from explorer.playground import figures as figs
    from explorer.playground.cache import get_trained
    from explorer.ui.playground import views as pv

    ae = get_trained(pg.TrainConfig("ae"))
    z = figs.latents(ae)[0]
    assert pv.plane_extent(ae, False) == 3.0
    assert pv.plane_extent(ae, True) >= np.percentile(np.abs(z), 99)
    vae = get_trained(pg.TrainConfig("vae"))
    assert pv.plane_extent(vae, True) >= np.percentile(np.abs(figs.latents(vae)[0]), 99)


def test_exported_page_has_thumbnails_and_the_verdict_within_its_cap(tmp_path):
    from explorer import datasets

    ts = datasets.teaching_set()
    a = atlas.build(ts, ["vae:test-tiny"], "pca")
    verdict = atlas_views.export_verdict(a, "pca")
    page = atlas.figure_html(a, "pca", verdict, "a <b>note</b>")
    uris = re.findall(r'"data:image/jpeg;base64,[A-Za-z0-9+/=]+"', page)
    assert len(uris) == len(ts)
    assert "its own photo" in page and "a &lt;b&gt;note&lt;/b&gt;" in page
    assert "plotly_hover" in page and "customdata" in page
    thumbs, note = atlas.export.html_thumbs(a, budget_mb=0.01)
    assert note and sum(t is not None for t in thumbs) < len(ts)
    assert sum(len(t) for t in thumbs if t) <= 0.01 * 1024 * 1024 * 1.5


def test_a_tiny_wrapper_error_picture_is_an_image():
    im = pictures.error_heatmap(Image.new("RGB", (16, 16)), Image.new("RGB", (16, 16), "white"))
    out = pictures.with_colour_bar(im, 1.0)
    assert isinstance(out, Image.Image) and out.size[0] == 16


def test_handlers_keep_their_parameters_and_add_the_toggle_last():
    import inspect

    for fn, first in (
        (atlas_handlers.on_atlas_select, ["atlas_id", "shown", "index"]),
        (atlas_handlers.on_atlas_query_image, ["atlas_id", "image", "folder"]),
    ):
        params = list(inspect.signature(fn).parameters)
        assert params[:3] == first and params[3] == "own_group"
    assert gr is not None
