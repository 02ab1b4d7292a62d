"""Charts drawn on the server as inline SVG: no script, nothing external, so the strict
Content-Security-Policy stays as it is. Each chart has a title and a text summary for
screen readers (role="img"), and the page shows the numbers in a table beside it."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 560, 180
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 40, 22, 10
#: Colours with at least 3:1 contrast on white (WCAG 1.4.11 for graphics).
COLOURS = ("#1f5fbf", "#b3261e", "#1e6b35", "#8a5300", "#6b3fa0", "#4a5560")
_ids = itertools.count(1)


def _scale(top: int) -> int:
    """A round top for the y axis, at least 1."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if top <= step * 4:
            return step * 4
    return top


def _frame(chart_id: str, title: str, summary: str, top: int, labels: Sequence[str]) -> list[str]:
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(summary)}</desc>',
    ]
    for i in range(5):
        value = top * i // 4
        y = PAD_TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{PAD_LEFT - 4}" y="{y + 4:.1f}" class="axis" text-anchor="end">{value}</text>'
        )
    if labels:
        for i in sorted({0, len(labels) // 2, len(labels) - 1}):
            x = PAD_LEFT + (WIDTH - PAD_LEFT) * (i + 0.5) / len(labels)
            anchor = "start" if i == 0 else "end" if i == len(labels) - 1 else "middle"
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 6}" class="axis" text-anchor="{anchor}">'
                f"{escape(labels[i])}</text>"
            )
    return parts


def line_chart(
    title: str, labels: Sequence[str], series: dict[str, Sequence[int | None]]
) -> Markup:
    """One line per series over ``labels`` (None: no data that day, the line breaks)."""
    chart_id = f"chart{next(_ids)}"
    values = [v for s in series.values() for v in s if v is not None]
    top = _scale(max(values, default=0))
    last = {
        name: next((v for v in reversed(s) if v is not None), None) for name, s in series.items()
    }
    summary = "Latest: " + ", ".join(
        f"{n} {v if v is not None else 'no data'}" for n, v in last.items()
    )
    parts = _frame(chart_id, title, summary, top, labels)
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    step = (WIDTH - PAD_LEFT) / max(len(labels), 1)
    for colour, (name, points) in zip(itertools.cycle(COLOURS), series.items(), strict=False):
        segments: list[list[str]] = [[]]
        for i, value in enumerate(points):
            if value is None:
                segments.append([])
                continue
            x = PAD_LEFT + step * (i + 0.5)
            y = PAD_TOP + plot_h - plot_h * value / top
            segments[-1].append(f"{x:.1f},{y:.1f}")
        for segment in segments:
            if len(segment) == 1:
                cx, cy = segment[0].split(",")
                parts.append(
                    f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"><title>{escape(name)}</title></circle>'
                )
            elif segment:
                parts.append(
                    f'<polyline points="{" ".join(segment)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"><title>{escape(name)}</title></polyline>'
                )
    parts.append("</svg>")
    return Markup("".join(parts)) + legend(list(series))  # noqa: S704 (every text escaped above)


def bar_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[int]]) -> Markup:
    """Bars side by side per label, one colour per series."""
    chart_id = f"chart{next(_ids)}"
    top = _scale(max((v for s in series.values() for v in s), default=0))
    totals = ", ".join(f"{name} {sum(values)}" for name, values in series.items())
    parts = _frame(chart_id, title, f"In all: {totals}", top, labels)
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = (WIDTH - PAD_LEFT) / max(len(labels), 1)
    width = slot * 0.8 / max(len(series), 1)
    for k, (colour, (name, values)) in enumerate(
        zip(itertools.cycle(COLOURS), series.items(), strict=False)
    ):
        for i, value in enumerate(values):
            h = plot_h * value / top
            x = PAD_LEFT + slot * i + slot * 0.1 + width * k
            parts.append(
                f'<rect x="{x:.1f}" y="{PAD_TOP + plot_h - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(labels[i])}: {value} {escape(name)}</title></rect>'
            )
    parts.append("</svg>")
    return Markup("".join(parts)) + legend(list(series))  # noqa: S704 (every text escaped above)


def legend(names: Sequence[str]) -> Markup:
    items = "".join(
        f'<li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true" focusable="false">'
        f'<rect width="10" height="10" fill="{colour}"/></svg>{escape(name)}</li>'
        for colour, name in zip(itertools.cycle(COLOURS), names, strict=False)
    )
    return Markup(f'<ul class="legend">{items}</ul>')  # noqa: S704 (names escaped)
