"""explorer.images.plots: the figures' data, layout and orientation (not their looks)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from explorer.images.plots import (
    channel_grid,
    generations_plot,
    grid_columns,
    heatmap,
    latent_histogram,
)


def _latent(c, h=6, w=5, seed=0):
    """(C,h,w) with a different scale per channel and a different value in every row."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((c, h, w)) * (1 + np.arange(c))[:, None, None]
    z += np.arange(h)[None, :, None] * 0.01  # rows distinguishable even after a flip
    return z.astype(np.float32)


def _axis(fig: go.Figure, kind: str, ref: str):
    """Layout axis object for a trace's axis reference ("x", "x2", "y7", ...)."""
    return fig.layout[f"{kind}axis{ref[1:]}"]


def _shown_top_to_bottom(fig: go.Figure, trace, field: str = "z") -> np.ndarray:
    """The rows of ``trace.<field>`` in the order they appear on screen, top row first."""
    data = np.asarray(getattr(trace, field))
    yaxis = _axis(fig, "y", trace.yaxis or "y")
    reversed_axis = yaxis.autorange == "reversed" or (
        yaxis.range is not None and yaxis.range[0] > yaxis.range[1]
    )
    ys = np.asarray(trace.y) if trace.y is not None else np.arange(data.shape[0])
    bottom_to_top = np.argsort(ys, kind="stable")  # increasing y is drawn upwards ...
    order = bottom_to_top if reversed_axis else bottom_to_top[::-1]  # ... unless reversed
    return data[order]


@pytest.mark.parametrize(("channels", "cols"), [(4, 4), (16, 4), (32, 8)])
def test_grid_columns(channels, cols):
    assert grid_columns(channels) == cols


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("channels", [4, 16, 32])
def test_channel_grid_layout(channels, shared):
    z = _latent(channels)
    fig = channel_grid(z, shared_scale=shared)
    assert len(fig.data) == channels
    assert all(t.type == "heatmap" for t in fig.data)
    cols = grid_columns(channels)
    rows = math.ceil(channels / cols)
    x_domains = [tuple(_axis(fig, "x", t.xaxis or "x").domain) for t in fig.data]
    y_domains = [tuple(_axis(fig, "y", t.yaxis or "y").domain) for t in fig.data]
    xs = sorted(set(x_domains))
    ys = sorted(set(y_domains), reverse=True)  # top row first
    assert len(xs) == cols and len(ys) == rows
    for i in range(channels):
        row, col = divmod(i, cols)
        assert x_domains[i] == xs[col], f"channel {i} is not in column {col}"
        assert y_domains[i] == ys[row], f"channel {i} is not in row {row}"
    # each subplot is titled with its channel, in reading order
    titles = [a.text for a in fig.layout.annotations]
    assert [t.split(" · ")[0] for t in titles[:channels]] == [f"ch {i}" for i in range(channels)]


@pytest.mark.parametrize("channels", [4, 16, 32])
def test_channel_grid_shared_scale(channels):
    z = _latent(channels)
    fig = channel_grid(z, shared_scale=True)
    assert sum(bool(t.showscale) for t in fig.data) == 1
    ranges = {(t.zmin, t.zmax) for t in fig.data}
    assert len(ranges) == 1
    zmin, zmax = ranges.pop()
    assert zmin == -zmax and zmax > 0
    assert zmax <= np.abs(z).max() + 1e-6
    assert zmax >= np.percentile(np.abs(z), 99) - 1e-6


@pytest.mark.parametrize("channels", [4, 16, 32])
def test_channel_grid_per_channel_scale(channels):
    """Per channel: each map on its own symmetric range, one shared bar read as a fraction of
    that range, the range itself in the map's title (no unreadable bar per small map)."""
    z = _latent(channels)
    fig = channel_grid(z, shared_scale=False)
    assert sum(bool(t.showscale) for t in fig.data) == 1
    titles = [a.text for a in fig.layout.annotations][:channels]
    for i, t in enumerate(fig.data):
        bound = np.abs(z[i]).max()
        assert (t.zmin, t.zmax) == (-1.0, 1.0), f"channel {i}"
        np.testing.assert_allclose(np.asarray(t.z)[::-1] * bound, z[i], rtol=1e-5, atol=1e-6)
        assert titles[i] == f"ch {i} · ±{bound:.2g}"
    # channels have different scales here, so their titles differ
    assert len(set(titles)) == channels


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("channels", [4, 16, 32])
def test_channel_grid_shows_row_0_at_the_top(channels, shared):
    z = _latent(channels, h=7, w=4)
    fig = channel_grid(z, shared_scale=shared)
    for i, t in enumerate(fig.data):
        scale = 1.0 if shared else np.abs(z[i]).max()
        np.testing.assert_allclose(_shown_top_to_bottom(fig, t) * scale, z[i], rtol=1e-5)
        # the hover label names the latent's own row index and its raw value
        shown = _shown_top_to_bottom(fig, t, "customdata")
        np.testing.assert_array_equal(shown[:, 0, 0], np.arange(7))
        np.testing.assert_allclose(shown[..., 1], z[i], rtol=1e-6)


def test_heatmap_shows_row_0_at_the_top():
    m = np.arange(12, dtype=np.float32).reshape(4, 3)
    fig = heatmap(m, "title", label="std")
    np.testing.assert_array_equal(_shown_top_to_bottom(fig, fig.data[0]), m)
    assert fig.data[0].colorbar.title.text == "std"


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).standard_normal((4, 32, 32)),
        np.random.default_rng(1).normal(3.0, 5.0, 5000),  # wider than [-4, 4]
        np.random.default_rng(2).uniform(-0.5, 0.5, 1000),  # narrower
    ],
    ids=["normal", "wide", "narrow"],
)
def test_latent_histogram_is_a_density(values):
    fig = latent_histogram(values)
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 1
    bar = bars[0]
    heights, widths, centres = np.asarray(bar.y), np.asarray(bar.width), np.asarray(bar.x)
    assert (heights * widths).sum() == pytest.approx(1.0, abs=1e-9)
    # the bars span every value
    assert (centres - widths / 2).min() <= values.min()
    assert (centres + widths / 2).max() >= values.max()
    # the N(0, 1) reference curve
    curves = [t for t in fig.data if t.type == "scatter"]
    assert len(curves) == 1
    x, y = np.asarray(curves[0].x), np.asarray(curves[0].y)
    assert y.max() == pytest.approx(1 / math.sqrt(2 * math.pi), abs=1e-3)  # 0.3989
    assert abs(x[np.argmax(y)]) < 0.05
    assert x.min() <= -4 and x.max() >= 4


def test_latent_histogram_matches_the_sample():
    """A large N(0,1) sample's histogram follows the overlaid N(0,1) density."""
    v = np.random.default_rng(3).standard_normal(400_000)
    fig = latent_histogram(v, bins=80)
    bar = next(t for t in fig.data if t.type == "bar")
    centres, heights = np.asarray(bar.x), np.asarray(bar.y)
    expected = np.exp(-(centres**2) / 2) / math.sqrt(2 * math.pi)
    assert np.abs(heights - expected).max() < 0.01


def test_generations_plot_has_both_series():
    psnrs, ssims = [31.5, 29.25, 28.0, 27.5], [0.91, 0.88, 0.86, 0.85]
    fig = generations_plot(psnrs, ssims)
    assert len(fig.data) == 2
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"PSNR (dB)", "SSIM"}
    p, s = by_name["PSNR (dB)"], by_name["SSIM"]
    assert list(p.y) == psnrs and list(s.y) == ssims
    assert list(p.x) == list(s.x) == [1, 2, 3, 4]
    assert p.yaxis != s.yaxis  # SSIM on its own (secondary) axis
    assert fig.layout[f"yaxis{s.yaxis[1:]}"].overlaying == "y"
