"""Charts as SVG, drawn on the server: no script, no library in the browser.  Every label is escaped here.

``bars``: one bar per item (optionally stacked with a second series), a dashed line for a target.
``hbars``: one horizontal bar per customer against a target, red when it misses it.
"""

from __future__ import annotations

from html import escape
from typing import Sequence

WIDTH, HEIGHT = 640, 220
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 16, 36
OK, BAD, MUTED, SECOND = "#2f7d4f", "#b3261e", "#8a8f98", "#d08a1f"


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")


def bars(title: str, labels: Sequence[str], values: Sequence[float | None], second: Sequence[float | None] | None = None,
         legend: tuple[str, str] | None = None, target: float | None = None, unit: str = "") -> str:
    """A vertical bar chart; ``second`` is stacked on top (e.g. failed on top of succeeded deployments)."""
    n = max(len(values), 1)
    tops = [(v or 0) + ((second[i] or 0) if second else 0) for i, v in enumerate(values)]
    peak = max([*tops, target or 0, 1e-9])
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    slot = plot_w / n
    bar_w = max(2.0, slot * 0.7)
    y = lambda v: PAD_T + plot_h - (v / peak) * plot_h  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="chart" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="{PAD_L}" y1="{PAD_T + plot_h}" x2="{WIDTH - PAD_R}" y2="{PAD_T + plot_h}" stroke="{MUTED}"/>',
             f'<text x="{PAD_L - 6}" y="{PAD_T + 4}" text-anchor="end" class="axis">{escape(_fmt(peak))}</text>',
             f'<text x="{PAD_L - 6}" y="{PAD_T + plot_h}" text-anchor="end" class="axis">0</text>']
    if unit:
        parts.append(f'<text x="4" y="{PAD_T + plot_h / 2}" class="axis" transform="rotate(-90 8 {PAD_T + plot_h / 2})">{escape(unit)}</text>')
    every = max(1, n // 12)
    for i, value in enumerate(values):
        x = PAD_L + i * slot + (slot - bar_w) / 2
        base = value or 0
        if value is not None:
            parts.append(f'<rect x="{x:.1f}" y="{y(base):.1f}" width="{bar_w:.1f}" height="{PAD_T + plot_h - y(base):.1f}" fill="{OK}">'
                         f'<title>{escape(labels[i])}: {escape(_fmt(base))}</title></rect>')
        if second and second[i]:
            top = base + second[i]
            parts.append(f'<rect x="{x:.1f}" y="{y(top):.1f}" width="{bar_w:.1f}" height="{y(base) - y(top):.1f}" fill="{BAD}">'
                         f'<title>{escape(labels[i])}: {escape(_fmt(second[i]))}</title></rect>')
        if i % every == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - PAD_B + 14}" text-anchor="middle" class="axis">{escape(labels[i])}</text>')
    if target is not None:
        parts.append(f'<line x1="{PAD_L}" y1="{y(target):.1f}" x2="{WIDTH - PAD_R}" y2="{y(target):.1f}" stroke="{SECOND}" '
                     f'stroke-dasharray="6 4"/><text x="{WIDTH - PAD_R}" y="{y(target) - 4:.1f}" text-anchor="end" class="axis">'
                     f'target {escape(_fmt(target))}</text>')
    if legend:
        parts.append(f'<rect x="{PAD_L}" y="{HEIGHT - 14}" width="10" height="10" fill="{OK}"/><text x="{PAD_L + 14}" y="{HEIGHT - 5}" class="axis">'
                     f'{escape(legend[0])}</text><rect x="{PAD_L + 120}" y="{HEIGHT - 14}" width="10" height="10" fill="{BAD}"/>'
                     f'<text x="{PAD_L + 134}" y="{HEIGHT - 5}" class="axis">{escape(legend[1])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def hbars(title: str, labels: Sequence[str], values: Sequence[float | None], target: float | None, good: str, unit: str = "") -> str:
    """One horizontal bar per label; red when it misses ``target`` (``good``: "min" or "max"); "no data" when None."""
    row_h, label_w = 22, 150
    height = PAD_T + row_h * max(len(values), 1) + 24
    peak = max([v for v in values if v is not None] + [target or 0, 1e-9])
    plot_w = WIDTH - label_w - PAD_R - 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" class="chart" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, (label, value) in enumerate(zip(labels, values)):
        top = PAD_T + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{top + 14}" text-anchor="end" class="axis">{escape(label)}</text>')
        if value is None:
            parts.append(f'<text x="{label_w}" y="{top + 14}" class="axis muted">no data</text>')
            continue
        missed = target is not None and (value < target if good == "min" else value > target)
        width = max(1.0, value / peak * plot_w)
        parts.append(f'<rect x="{label_w}" y="{top + 3}" width="{width:.1f}" height="{row_h - 6}" fill="{BAD if missed else OK}">'
                     f'<title>{escape(label)}: {escape(_fmt(value))} {escape(unit)}</title></rect>'
                     f'<text x="{label_w + width + 4:.1f}" y="{top + 14}" class="axis">{escape(_fmt(value))}</text>')
    if target is not None:
        x = label_w + target / peak * plot_w
        parts.append(f'<line x1="{x:.1f}" y1="{PAD_T - 4}" x2="{x:.1f}" y2="{height - 20}" stroke="{SECOND}" stroke-dasharray="6 4"/>'
                     f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" class="axis">target {escape(_fmt(target))}</text>')
    parts.append("</svg>")
    return "".join(parts)
