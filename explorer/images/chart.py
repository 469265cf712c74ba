"""Static pictures of simple plotly figures, for files that must open offline without plotly.js
(the lesson's handout): bar and line traces drawn with Pillow on linear axes.

Only what the lesson's figures use is drawn: ``bar`` traces (x, y, optional widths) and
``scatter`` traces (as lines), the title, the axis titles and a legend. Other trace types are
left out, and the picture says so under its title.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PLOTLY_COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a")


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1: one size only
        return ImageFont.load_default()


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """(lo, hi) -> about ``count`` round tick values (steps of 1, 2 or 5 × 10^k) inside it."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks, t = [], first
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _label(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def _text(obj) -> str:
    return str(getattr(getattr(obj, "title", None), "text", None) or "")


def figure_image(fig, size: tuple[int, int] = (960, 440)) -> Image.Image:
    """A plotly figure of bar and line traces -> an RGB picture of ``size`` (W, H) with its
    title, axes, tick labels, axis titles and legend."""
    w, h = size
    img = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    small, big = _font(max(12, h // 30)), _font(max(14, h // 22))
    title = _text(fig.layout)
    drawn = [t for t in fig.data if t.type in ("bar", "scatter") and t.x is not None]
    skipped = len(fig.data) - len(drawn)
    left, right, top, bottom = 70, 20, 50 if title else 20, 60
    x0, y0, x1, y1 = left, top, w - right, h - bottom
    xs, ys = [], [0.0]
    for t in drawn:
        x = np.asarray(t.x, np.float64)
        y = np.asarray(t.y, np.float64)
        half = np.asarray(t.width, np.float64) / 2 if t.type == "bar" and t.width is not None else 0
        xs += [float(np.min(x - half)), float(np.max(x + half))]
        ys += [float(np.nanmax(y))]
    xlo, xhi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    ylo, yhi = 0.0, max(ys) * 1.05 or 1.0

    def px(v):
        return x0 + (np.asarray(v, np.float64) - xlo) / (xhi - xlo or 1) * (x1 - x0)

    def py(v):
        return y1 - (np.asarray(v, np.float64) - ylo) / (yhi - ylo or 1) * (y1 - y0)

    grey = (200, 200, 200)
    for t in nice_ticks(ylo, yhi):
        yy = float(py(t))
        draw.line([(x0, yy), (x1, yy)], fill=(235, 235, 235))
        draw.text((x0 - 6, yy), _label(t), fill=(60, 60, 60), font=small, anchor="rm")
    for t in nice_ticks(xlo, xhi, 9):
        xx = float(px(t))
        draw.line([(xx, y1), (xx, y1 + 5)], fill=grey)
        draw.text((xx, y1 + 8), _label(t), fill=(60, 60, 60), font=small, anchor="ma")
    legend = []
    for k, t in enumerate(drawn):
        colour = PLOTLY_COLOURS[k % len(PLOTLY_COLOURS)]
        x, y = np.asarray(t.x, np.float64), np.asarray(t.y, np.float64)
        if t.type == "bar":
            colour = t.marker.color if isinstance(t.marker.color, str) else colour
            width = np.asarray(t.width, np.float64) if t.width is not None else np.full(len(x), 0.8)
            for xi, yi, wi in zip(x, y, np.broadcast_to(width, x.shape), strict=True):
                if np.isfinite(yi) and yi > 0:
                    a, b = float(px(xi - wi / 2)), float(px(xi + wi / 2))
                    draw.rectangle([a, float(py(yi)), max(a, b - 0.5), y1], fill=colour)
        else:
            colour = t.line.color if isinstance(t.line.color, str) else colour
            pts = [(float(px(a)), float(py(b))) for a, b in zip(x, y, strict=True)]
            pts = [p for p in pts if all(map(math.isfinite, p))]
            if len(pts) > 1:
                draw.line(pts, fill=colour, width=max(2, h // 200))
        if t.name:
            legend.append((str(t.name), colour))
    draw.rectangle([x0, y0, x1, y1], outline=(120, 120, 120))
    if title:
        draw.text((w / 2, 12), title, fill=(20, 20, 20), font=big, anchor="ma")
    if skipped:
        note = f"({skipped} trace(s) of other kinds not drawn)"
        draw.text((w / 2, 12 + big.size + 2), note, fill=(120, 0, 0), font=small, anchor="ma")
    draw.text(((x0 + x1) / 2, h - 8), _text(fig.layout.xaxis), fill=(40, 40, 40), font=small,
              anchor="md")  # fmt: skip
    ytitle = _text(fig.layout.yaxis)
    if ytitle:
        tw = int(draw.textlength(ytitle, font=small)) + 4
        label = Image.new("RGB", (tw, small.size + 6), (255, 255, 255))
        ImageDraw.Draw(label).text((2, 2), ytitle, fill=(40, 40, 40), font=small)
        label = label.rotate(90, expand=True)
        img.paste(label, (4, int((y0 + y1) / 2 - label.height / 2)))
    ly = y0 + 8
    for name, colour in legend:
        tw = draw.textlength(name, font=small)
        draw.rectangle([x1 - tw - 34, ly + 2, x1 - tw - 18, ly + small.size], fill=colour)
        draw.text((x1 - 10, ly), name, fill=(30, 30, 30), font=small, anchor="ra")
        ly += small.size + 8
    return img
