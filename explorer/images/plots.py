"""Plotly figures (no gradio here). Arrays in, ``go.Figure`` out."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.core.safe_text import display_name, display_names

DIVERGING = "RdBu_r"
SEQUENTIAL = "Viridis"


def grid_columns(channels: int) -> int:
    """Columns for a channel grid: 4 for 4 or 16 channels, 8 for 32, about √C otherwise."""
    if channels <= 4:
        return channels
    if channels <= 16:
        return 4
    return 8 if channels <= 64 else math.ceil(math.sqrt(channels))


def channel_grid(z: np.ndarray, shared_scale: bool = True, title: str = "") -> go.Figure:
    """(C,h,w) latent -> a grid of heatmaps, one per channel, under one colour bar.

    ``shared_scale``: one symmetric colour scale for all channels, so channels can be compared
    (the bar in latent units); otherwise each channel is drawn on its own symmetric range, its
    bound in its title (``ch 3 · ±2.1``), and the one bar reads as a fraction of that bound:
    no unreadable bar per map. Hovering shows the raw value either way.
    """
    z = np.asarray(z, np.float32)
    c, h, w = z.shape
    cols = grid_columns(c)
    rows = math.ceil(c / cols)
    bound = float(np.percentile(np.abs(z), 99.5)) or 1.0
    own = [float(np.abs(z[i]).max()) or 1.0 for i in range(c)]
    names = [f"ch {i}" if shared_scale else f"ch {i} · ±{own[i]:.2g}" for i in range(c)]
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=names,
        horizontal_spacing=0.06 if shared_scale else 0.03,
        vertical_spacing=0.22 / rows + 0.02,
    )
    ys = np.broadcast_to(np.arange(h)[::-1, None], (h, w))
    for i in range(c):
        r, col = divmod(i, cols)
        ch = z[i][::-1]  # plotly draws row 0 at the bottom
        m = bound if shared_scale else own[i]
        trace = go.Heatmap(
            z=ch if shared_scale else ch / m,
            zmin=-m if shared_scale else -1.0,
            zmax=m if shared_scale else 1.0,
            colorscale=DIVERGING,
            showscale=i == 0,
            hovertemplate=(
                f"ch {i}<br>x %{{x}}, y %{{customdata[0]}}<br>value %{{customdata[1]:.3f}}"
                "<extra></extra>"
            ),
            customdata=np.stack([ys, ch], axis=-1),
        )
        fig.add_trace(trace, row=r + 1, col=col + 1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    for i in range(c):  # square pixels: each y axis anchored to its own x axis
        n = i + 1 if i else ""
        fig.layout[f"yaxis{n}"].update(scaleanchor=f"x{n}", constrain="domain")
        fig.layout[f"xaxis{n}"].update(constrain="domain")
    bar = "value" if shared_scale else "÷ the channel's<br>own ±bound"
    fig.data[0].colorbar = {"title": {"text": bar}, "thickness": 12}
    # roughly square cells for a ~900 px wide plot, so colourbars match their maps
    height = max(260, int(rows * (900 / cols * 0.85 + 28) + 70))
    fig.update_layout(
        title=title
        or f"{c} latent channels ({h}×{w}), {'shared' if shared_scale else 'per-channel'} scale",
        height=height,
        margin={"l": 10, "r": 40, "t": 60, "b": 10},
    )
    fig.update_annotations(font_size=10)
    return fig


def latent_histogram(
    values: np.ndarray, title: str = "", bins: int = 120, prior: bool = True
) -> go.Figure:
    """(…) scaled latent values -> density histogram with the N(0,1) density overlaid (unless
    ``prior`` is False: a VQ latent has no N(0,1) prior to compare with)."""
    v = np.asarray(values, np.float64).ravel()
    lo, hi = min(float(v.min()), -4.0), max(float(v.max()), 4.0)
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi), density=True)
    centers = (edges[:-1] + edges[1:]) / 2
    xs = np.linspace(lo, hi, 400)
    fig = go.Figure()
    fig.add_bar(
        x=centers,
        y=counts,
        width=np.diff(edges),
        name="latent values",
        marker_color="#4c78a8",
        opacity=0.8,
    )
    if prior:
        fig.add_scatter(
            x=xs,
            y=np.exp(-(xs**2) / 2) / math.sqrt(2 * math.pi),
            name="N(0, 1)",
            line={"color": "#e45756", "width": 2},
        )
    fig.update_layout(
        title=title or "Scaled latent values vs the N(0, 1) prior",
        bargap=0,
        height=320,
        xaxis_title="value",
        yaxis_title="density",
        margin={"l": 50, "r": 10, "t": 50, "b": 40},
        legend={"x": 0.99, "xanchor": "right", "y": 0.99},
    )
    return fig


def heatmap(m: np.ndarray, title: str, colorscale: str = SEQUENTIAL, label: str = "") -> go.Figure:
    """(h,w) map -> one heatmap with a colourbar, image orientation (row 0 at the top)."""
    m = np.asarray(m, np.float32)
    fig = go.Figure(
        go.Heatmap(
            z=m,
            colorscale=colorscale,
            colorbar={"title": {"text": label}},
            hovertemplate="x %{x}, y %{y}<br>%{z:.4f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(title=title, height=340, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def generations_plot(psnrs: Sequence[float], ssims: Sequence[float], title: str = "") -> go.Figure:
    """Per-generation PSNR (dB, left axis) and SSIM (right axis) of repeated round trips."""
    gens = list(range(1, len(psnrs) + 1))
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(
        x=gens, y=list(psnrs), name="PSNR (dB)", mode="lines+markers", secondary_y=False
    )
    fig.add_scatter(
        x=gens,
        y=list(ssims),
        name="SSIM",
        mode="lines+markers",
        secondary_y=True,
        line={"dash": "dot"},
    )
    fig.update_xaxes(title_text="generation (round trips so far)", dtick=1)
    fig.update_yaxes(title_text="PSNR vs original (dB)", secondary_y=False)
    fig.update_yaxes(title_text="SSIM vs original", secondary_y=True)
    fig.update_layout(
        title=title or "Quality after repeated encode → decode",
        height=340,
        margin={"l": 50, "r": 50, "t": 50, "b": 80},
        legend={"orientation": "h", "y": -0.25, "x": 0.5, "xanchor": "center"},
    )
    return fig


# 20 colours chosen to stay apart from each other on white (Sasha Trubetskoy's "20 distinct
# colours", with the three palest swapped for darker ones); past 20 classes the colours repeat
# with another marker shape, so every class keeps a distinct (colour, shape) pair.
CLASS_COLOURS: tuple[str, ...] = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
    "#808000", "#000075", "#469990", "#800000", "#ffe119", "#bfef45", "#fabed4", "#a9a9a9",
    "#000000", "#dcbeff", "#aaffc3", "#ffd8b1",
)  # fmt: skip
CLASS_SYMBOLS: tuple[str, ...] = ("circle", "square", "diamond", "triangle-up", "cross", "x")


def class_styles(n: int) -> tuple[list[str], list[str]]:
    """n classes -> (n colours, n plotly marker symbols): distinct pairs for up to 120 classes."""
    k = len(CLASS_COLOURS)
    colours = [CLASS_COLOURS[c % k] for c in range(n)]
    symbols = [CLASS_SYMBOLS[(c // k) % len(CLASS_SYMBOLS)] for c in range(n)]
    return colours, symbols


def point_colours(n: int) -> list[str]:
    """n classes -> n ``#rrggbb`` colours for panels that draw every point as a dot (no marker
    shapes): :data:`CLASS_COLOURS`, then past 20 classes the same colours darker, then lighter,
    alternating, so up to 120 classes keep distinct colours."""
    k = len(CLASS_COLOURS)
    out: list[str] = []
    for c in range(n):
        rgb = [int(CLASS_COLOURS[c % k][i : i + 2], 16) for i in (1, 3, 5)]
        step = (c // k) % 6
        amount = 0.22 * ((step + 1) // 2)  # 0, 0.22, 0.22, 0.44, 0.44, 0.66
        shade = ""
        for extra in range(8):  # the other way, then further, where that colour is taken
            for towards in (0, 255) if step % 2 else (255, 0):
                t = min(amount + 0.06 * extra, 0.9)
                shade = "#" + "".join(f"{round(v + (towards - v) * t):02x}" for v in rgb)
                if shade not in out:
                    break
            if shade not in out:
                break
        out.append(shade)
    return out


GL_ABOVE = 2000
"""Atlas panels with more points than this are drawn with WebGL (the app's atlas.js agrees)."""


HOVER_JS = """
<div id="atlas-hover" style="position:fixed;display:none;pointer-events:none;z-index:9;
 background:#fff;border:1px solid #999;padding:2px;box-shadow:0 1px 4px #0004"><img
 id="atlas-hover-img" style="display:block;width:96px;height:96px;object-fit:cover"></div>
<script>
(function () {
  const thumbs = JSON.parse(document.getElementById("atlas-thumbs").textContent);
  const box = document.getElementById("atlas-hover");
  const img = document.getElementById("atlas-hover-img");
  const plot = document.querySelector(".plotly-graph-div");
  plot.on("plotly_hover", (ev) => {
    const p = ev.points[0];
    const src = thumbs[p.customdata];
    if (!src) { box.style.display = "none"; return; }
    img.src = src;
    box.style.left = (ev.event.clientX + 14) + "px";
    box.style.top = (ev.event.clientY + 14) + "px";
    box.style.display = "block";
  });
  plot.on("plotly_unhover", () => { box.style.display = "none"; });
})();
</script>
"""
"""The exported page's hover thumbnail: the point's image (``customdata`` indexes the
thumbnails, JSON in ``#atlas-thumbs``) beside the pointer."""


_PLOTLY_TEXT = {ord(c): f"&#{ord(c)};" for c in "&<>\"'%"}


def plotly_text(s: object) -> str:
    """Text -> a Plotly string that shows exactly it: Plotly reads a subset of HTML (links,
    bold, spans) and ``%{...}`` templates in names, titles and hover text; every character that
    could start one becomes a numeric character reference, which Plotly shows as itself."""
    return str(s).translate(_PLOTLY_TEXT)


def atlas_html(
    panels: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[str],
    paths: Sequence[str],
    title: str = "",
    table_html: str = "",
    thumbs: Sequence[str | None] | None = None,
    intro_html: str = "",
) -> str:
    """``(panel title, (N,2) map)`` per space, N labels and paths -> a standalone HTML page
    (plotly.js inlined once, works offline): the panels side by side with the app's colours
    (:func:`point_colours`) and, past 20 classes, :func:`class_styles`' marker shapes too, the
    point count under each title, a legend of every class, and ``table_html`` (the metrics table) below. Past :data:`GL_ABOVE` points the panels
    are WebGL (``scattergl``) with smaller markers, as in the app. ``thumbs``: one image URL
    (a ``data:`` URI, say) or None per point, shown beside the pointer on hover
    (:data:`HOVER_JS`); ``intro_html`` goes above the panels (the verdict)."""
    classes = list(dict.fromkeys(labels))
    shown = display_names(classes)  # one short line each, no bidi controls, none alike
    colours, symbols = point_colours(len(classes)), class_styles(len(classes))[1]
    n = len(labels)
    gl = n > GL_ABOVE
    fig = make_subplots(
        rows=1,
        cols=len(panels),
        subplot_titles=[f"{plotly_text(t)}<br><sub>{n:,} points</sub>" for t, _ in panels],
        horizontal_spacing=0.02,
    )
    labels_arr = np.array(list(labels))
    for c, cls in enumerate(classes):
        ids = np.flatnonzero(labels_arr == cls)
        for j, (_, xy) in enumerate(panels):
            xy = np.asarray(xy)
            fig.add_trace(
                (go.Scattergl if gl else go.Scatter)(
                    x=xy[ids, 0],
                    y=xy[ids, 1],
                    mode="markers",
                    name=plotly_text(shown[cls]),
                    legendgroup=f"class-{c}",
                    showlegend=j == 0,
                    text=[
                        f"#{i} {plotly_text(display_name(paths[i], max_chars=120))}" for i in ids
                    ],
                    customdata=ids,
                    marker={
                        "size": 4 if gl else 8,
                        "color": colours[c],
                        "symbol": symbols[c],
                        "opacity": 0.85,
                        "line": {"width": 0 if gl else 0.5, "color": "#fff"},
                    },
                    hovertemplate="%{text}<extra>" + plotly_text(shown[cls]) + "</extra>",
                ),
                row=1,
                col=j + 1,
            )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    rows = -(-len(classes) // 6)  # legend rows below the panels, six classes a row
    fig.update_layout(
        title=plotly_text(display_name(title, max_chars=160)),
        height=480 + 22 * rows,
        plot_bgcolor="#fafafa",
        legend={"orientation": "h", "y": -0.02, "yanchor": "top", "x": 0},
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
    )
    page = fig.to_html(include_plotlyjs=True, full_html=True, default_width="100%")
    style = 'style="font-family:sans-serif;margin:12px"'
    if intro_html:
        page = page.replace("<body>", f"<body><div {style}>{intro_html}</div>", 1)
    if table_html:
        page = page.replace("</body>", f"<div {style}>{table_html}</div></body>")
    if thumbs is not None:
        data = json.dumps(list(thumbs)).replace("</", "<\\/")
        script = f'<script type="application/json" id="atlas-thumbs">{data}</script>'
        page = page.replace("</body>", script + HOVER_JS + "</body>")
    return page


def message_figure(text: str) -> go.Figure:
    """A blank figure holding one centred message (``<br>`` breaks lines), where a plot has
    nothing to show."""
    fig = go.Figure()
    fig.add_annotation(
        text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 14}
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=200, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def channel_before_after(before: np.ndarray, after: np.ndarray, channel: int, op: str) -> go.Figure:
    """Two (h,w) maps of one latent channel, before and after an edit, side by side on one
    shared symmetric colour scale."""
    fig = channel_grid(
        np.stack([before, after]),
        shared_scale=True,
        title=f"channel {int(channel)}: before | after ({op})",
    )
    fig.layout.annotations[0].text, fig.layout.annotations[1].text = "before", "after"
    return fig


def latent_scatter(
    z: np.ndarray,
    labels: np.ndarray,
    title: str = "",
    marks: np.ndarray | None = None,
    height: int = 340,
    star: np.ndarray | None = None,
    star_name: str = "your drawing",
) -> go.Figure:
    """(N,2) latents, (N,) digit labels 0..9 -> a scatter with one trace per digit (named
    "0".."9", class colours), plus a "codebook" trace of black crosses for ``marks`` (K,2) and
    a ``star_name`` trace of one large star at ``star`` (2,), drawn last (on top)."""
    z = np.asarray(z, dtype=np.float64)
    labels = np.asarray(labels)
    colours, _ = class_styles(10)
    fig = go.Figure()
    for digit in range(10):
        pts = z[labels == digit]
        fig.add_scattergl(
            x=pts[:, 0],
            y=pts[:, 1],
            mode="markers",
            name=str(digit),
            marker={"size": 4, "color": colours[digit], "opacity": 0.75},
            hovertemplate=f"digit {digit}<br>z = (%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
        )
    if marks is not None:
        m = np.asarray(marks, dtype=np.float64)
        fig.add_scattergl(
            x=m[:, 0],
            y=m[:, 1],
            mode="markers",
            name="codebook",
            marker={"symbol": "x", "size": 8, "color": "black"},
            hovertemplate="code at (%{x:.2f}, %{y:.2f})<extra></extra>",
        )
    if star is not None:
        p = np.asarray(star, dtype=np.float64).reshape(2)
        fig.add_scattergl(  # WebGL like the points, so it is drawn over them
            x=[p[0]],
            y=[p[1]],
            mode="markers",
            name=star_name,
            marker={
                "symbol": "star",
                "size": 22,
                "color": "#ffd400",
                "line": {"color": "black", "width": 1.5},
            },
            hovertemplate=f"{star_name}<br>z = (%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
        )
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        height=height,
        margin={"l": 40, "r": 10, "t": 40, "b": 30},
        legend={"title": {"text": "digit"}, "font": {"size": 10}, "itemsizing": "constant"},
        plot_bgcolor="white",
    )
    fig.update_xaxes(title_text="z₁", gridcolor="#eee", zerolinecolor="#ccc")
    fig.update_yaxes(title_text="z₂", gridcolor="#eee", zerolinecolor="#ccc")
    return fig


def perturbation_plot(
    panels: Sequence[tuple[str, str]],
    lines: Sequence[tuple[str, str, np.ndarray, np.ndarray]],
    cols: int = 4,
) -> go.Figure:
    """One small plot per perturbation, one line per space.

    ``panels``: (perturbation name, unit of its strength) in display order; ``lines``: (panel
    name, space, strengths, distances) with distances as a fraction of the median distance
    between unrelated photos (a dotted line at 1.0 marks "as far as an unrelated photo")."""
    n = max(len(panels), 1)
    rows = math.ceil(n / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[name.replace("_", " ") for name, _ in panels],
        vertical_spacing=0.32 / rows + 0.04,
        horizontal_spacing=0.06,
    )
    where = {name: divmod(k, cols) for k, (name, _) in enumerate(panels)}
    spaces = list(dict.fromkeys(space for _, space, _, _ in lines))
    colours, _ = class_styles(len(spaces))
    for name, space, x, y in lines:
        r, c = where[name]
        colour = colours[spaces.index(space)]
        fig.add_scatter(
            x=list(np.asarray(x, dtype=np.float64)),
            y=list(np.asarray(y, dtype=np.float64)),
            mode="lines+markers",
            name=space,
            legendgroup=space,
            showlegend=name == panels[0][0],
            line={"color": colour},
            marker={"size": 5},
            hovertemplate=f"{space}<br>{name} %{{x:g}}: %{{y:.0%}}<extra></extra>",
            row=r + 1,
            col=c + 1,
        )
    for k, (_, unit) in enumerate(panels):
        r, c = divmod(k, cols)
        fig.update_xaxes(title_text=unit, title_font={"size": 10}, row=r + 1, col=c + 1)
        fig.add_hline(
            y=1.0, line={"dash": "dot", "color": "#999", "width": 1}, row=r + 1, col=c + 1
        )
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", gridcolor="#eee")
    fig.update_xaxes(gridcolor="#eee")
    fig.update_annotations(font={"size": 12})
    fig.update_layout(
        height=230 * rows + 60,
        margin={"l": 45, "r": 10, "t": 40, "b": 40},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        plot_bgcolor="white",
    )
    return fig


def code_map(indices: np.ndarray, palette: np.ndarray, title: str) -> go.Figure:
    """(h,w) int code indices, (K,3) uint8 palette -> the map as a categorical image, row 0 at
    the top; hovering a latent pixel shows its code index."""
    idx = np.asarray(indices)
    fig = go.Figure(go.Image(z=palette[idx], hoverinfo="skip"))
    fig.add_heatmap(
        z=idx,
        opacity=0,
        showscale=False,
        hovertemplate="x %{x}, y %{y}<br>code %{z}<extra></extra>",
    )
    fig.update_xaxes(showticklabels=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, scaleanchor="x")
    fig.update_layout(title=title, height=340, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def code_usage(counts: np.ndarray, palette: np.ndarray, title: str) -> go.Figure:
    """(K,) latent pixels per code, (K,3) uint8 palette -> one bar per used code, most used first,
    in the code's colour (the colours of :func:`code_map`); hovering shows the code index."""
    counts = np.asarray(counts)
    used = np.flatnonzero(counts)
    used = used[np.argsort(-counts[used], kind="stable")]
    colours = [f"rgb({r},{g},{b})" for r, g, b in palette[used]]
    fig = go.Figure(
        go.Bar(
            x=np.arange(1, len(used) + 1),
            y=counts[used],
            customdata=used,
            marker={"color": colours, "line": {"width": 0}},
            hovertemplate="code %{customdata}: %{y} latent pixels<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        height=340,
        bargap=0.1,
        xaxis_title=f"used codes, most used first (codebook of {len(counts):,})",
        yaxis_title="latent pixels",
        margin={"l": 50, "r": 10, "t": 50, "b": 40},
    )
    return fig
