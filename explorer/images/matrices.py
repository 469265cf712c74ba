"""Figures of matrices across spaces (no gradio here): the UNet sweep's heatmap and the spaces'
similarity matrices. Arrays in, ``go.Figure`` out."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.images.plots import SEQUENTIAL


def _spread(values: Sequence[float], gap: float) -> list[float]:
    """Label heights near ``values`` (in order of value) at least ``gap`` apart, within [0, 1]."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    last = -math.inf
    for i in order:
        out[i] = max(float(values[i]), last + gap)
        last = out[i]
    top = max(out, default=0.0)
    if top > 1.0:  # pushed past the top: shift the stack down
        out = [v - (top - 1.0) for v in out]
    return out


def sweep_heatmap(
    values: np.ndarray,
    *,
    panels: Sequence[str],
    blocks: Sequence[str],
    timesteps: Sequence[int],
    references: Sequence[tuple[str, float]] = (),
    chance: float | None = None,
    title: str = "",
    label: str = "score",
) -> go.Figure:
    """(P,B,T) scores in [0,1] -> P heatmaps side by side (rows: blocks in forward order, top to
    bottom; columns: timesteps), one shared colour scale drawn as a strip on the right with a
    line at each reference score (``(name, score)``) and at ``chance``. Names and titles are
    shown as text (``& < >`` escaped; a newline breaks a title)."""
    v = np.asarray(values, np.float64)
    p = v.shape[0]
    fig = make_subplots(
        rows=1,
        cols=p + 1,
        column_widths=[1.0] * p + [0.1],
        horizontal_spacing=0.06,
        subplot_titles=[_text(t) for t in panels] + [""],
    )
    xs = [str(t) for t in timesteps]
    for i in range(p):
        fig.add_trace(
            go.Heatmap(
                z=v[i],
                x=xs,
                y=list(blocks),
                zmin=0.0,
                zmax=1.0,
                colorscale=SEQUENTIAL,
                showscale=False,
                texttemplate="%{z:.2f}",
                textfont={"size": 10},
                hovertemplate=f"{_text(panels[i])}<br>block %{{y}}, t=%{{x}}<br>"
                f"{_text(label)} %{{z:.3f}}<extra></extra>",
            ),
            row=1,
            col=i + 1,
        )
        fig.update_xaxes(title_text="timestep (of 1000)", type="category", row=1, col=i + 1)
        fig.update_yaxes(
            type="category", autorange="reversed", showticklabels=i == 0, row=1, col=i + 1
        )
    levels = np.linspace(0.0, 1.0, 101)
    fig.add_trace(
        go.Heatmap(
            z=levels[:, None],
            y=levels,
            x=[0],
            zmin=0.0,
            zmax=1.0,
            colorscale=SEQUENTIAL,
            showscale=False,
            hoverinfo="skip",
        ),
        row=1,
        col=p + 1,
    )
    lines = [(_text(n), float(s)) for n, s in references if s is not None and np.isfinite(s)]
    if chance is not None and np.isfinite(chance):
        lines.append(("chance", float(chance)))
    height = max(380, 160 + 40 * len(blocks))
    top, bottom = 110, 50
    heights = _spread([s for _, s in lines], 14 / (height - top - bottom))  # 14 px apart
    xa, ya = f"x{p + 1}", f"y{p + 1}"
    for (name, s), h in zip(lines, heights, strict=True):
        dash = "dot" if name == "chance" else "solid"
        fig.add_shape(
            type="line", x0=-0.5, x1=0.5, y0=s, y1=s, xref=xa, yref=ya,
            line={"color": "#d62728" if name == "chance" else "white", "width": 2, "dash": dash},
        )  # fmt: skip
        # in the strip's domain coordinates: an annotation outside an axis's range is hidden
        fig.add_annotation(
            x=1.15, y=h, xref=f"{xa} domain", yref=ya, text=f"{name} {s:.2f}",
            showarrow=False, xanchor="left", font={"size": 11},
        )  # fmt: skip
    fig.update_xaxes(showticklabels=False, range=[-0.5, 0.5], row=1, col=p + 1)
    fig.update_yaxes(range=[0, 1], side="left", row=1, col=p + 1)
    fig.update_layout(
        title={"text": _text(title), "x": 0.01, "y": 1 - 38 / height, "yanchor": "middle"},
        height=height,
        margin={"l": 60, "r": 190, "t": top, "b": bottom},
    )
    return fig


def _text(s: object) -> str:
    """Text shown in a figure: ``& < >`` escaped (plotly reads a few HTML tags), line breaks as
    ``<br>``."""
    return "<br>".join(
        html.escape(line, quote=False) for line in ("" if s is None else str(s)).splitlines()
    )


def similarity_matrices(
    names: Sequence[str], cka: np.ndarray, mutual: np.ndarray, k: int = 10, note: str = ""
) -> go.Figure:
    """Two (S,S) symmetric matrices of S spaces side by side, each cell annotated with its
    value: linear CKA (debiased, about 0 to 1) and mutual k-NN (0 to 1; ``note`` follows its
    title); NaN cells stay blank."""
    names = list(names)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=["Linear CKA (debiased)", f"Mutual {k}-NN: shared neighbours{note}"],
        horizontal_spacing=0.16,
    )
    for col, m in ((1, np.asarray(cka, np.float64)), (2, np.asarray(mutual, np.float64))):
        z = [[None if not np.isfinite(v) else float(v) for v in row] for row in m]
        text = [["" if v is None else f"{v:.2f}" for v in row] for row in z]
        fig.add_heatmap(
            z=z,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            zmin=0,
            zmax=1,
            colorscale="Blues",
            showscale=col == 2,
            hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>",
            row=1,
            col=col,
        )
    fig.update_yaxes(autorange="reversed")
    fig.update_annotations(font={"size": 12})
    side = 36 * len(names) + 140
    fig.update_layout(height=max(260, side), margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
