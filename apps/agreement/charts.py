"""Server-rendered SVG charts for the agreement pages: no script, no CDN, prints as it shows.

Every text that comes from data is escaped; the markup is returned as a ``SafeString``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

CELL = 22
FONT = 11
CHAR_W = 6.2  # average glyph width of the page's sans-serif at FONT px
MAX_LABEL = 26


def _short(name: str) -> str:
    return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"


def heatmap(
    names: Sequence[str], confusion: Sequence[Sequence[int]], *, row_title: str, col_title: str
) -> SafeString:
    """Confusion heat map: rows = annotator A, columns = annotator B. Colour is the share of
    the row (A's class) that B put in each column; the count is printed in every non-empty cell,
    and the diagonal (agreement) is outlined."""
    size = len(names)
    shown = [_short(n) for n in names]
    label_px = CHAR_W * max((len(n) for n in shown), default=1)
    # Column labels are rotated by -60°: they rise ~0.87 and lean right ~0.5 of their length.
    left, y0 = 10 + label_px, 30 + 0.87 * label_px + 8
    width, height = left + size * CELL + 0.5 * label_px + 10, y0 + size * CELL + 10
    parts = [
        f'<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} '
        f'{height:.0f}" width="{width:.0f}" height="{height:.0f}" role="img"'
        ' aria-label="confusion heat map">',
        f'<text x="4" y="14" font-size="{FONT + 1}" font-weight="bold">'
        f"rows: {escape(row_title)} · columns: {escape(col_title)}</text>",
    ]
    for j, name in enumerate(shown):
        x = left + j * CELL + CELL / 2 + 4
        parts.append(
            f'<text x="{x}" y="{y0 - 4}" font-size="{FONT}" transform="rotate(-60 {x} {y0 - 4})">'
            f"<title>{escape(names[j])}</title>{escape(name)}</text>"
        )
    for i, row in enumerate(confusion):
        total = sum(row)
        y = y0 + i * CELL
        parts.append(
            f'<text x="{left - 4}" y="{y + CELL * 0.7}" font-size="{FONT}" text-anchor="end">'
            f"<title>{escape(names[i])}</title>{escape(shown[i])}</text>"
        )
        for j, count in enumerate(row):
            parts.append(_heat_cell(left + j * CELL, y, count, total, diagonal=i == j))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every data-borne text above is escaped


def _heat_cell(x: float, y: float, count: int, total: int, *, diagonal: bool) -> str:
    share = count / total if total else 0.0
    # White to a deep blue; dark cells get white digits.
    r, g, b = (round(255 - share * (255 - c)) for c in (31, 78, 160))
    stroke = ' stroke="#111" stroke-width="1.5"' if diagonal else ' stroke="#ddd"'
    cell = f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="rgb({r},{g},{b})"{stroke}>'
    cell += f"<title>{count} ({share:.0%} of the row)</title></rect>"
    if count:
        colour = "#fff" if share > 0.5 else "#111"
        cell += (
            f'<text x="{x + CELL / 2}" y="{y + CELL * 0.68}" font-size="{FONT - 2}"'
            f' text-anchor="middle" fill="{colour}">{count}</text>'
        )
    return cell


@dataclass(frozen=True)
class Bar:
    """One bar: a label, a value (``None``: not defined, drawn as a note) and its CI."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None


def bars(
    title: str,
    rows: Sequence[Bar],
    *,
    reference: float | None = None,
    reference_label: str = "published",
    mean: float | None = None,
) -> SafeString:
    """Horizontal bars on a [lo, 1] axis (lo = 0, or -1 when a value or CI is negative), with CI
    whiskers, an optional dashed reference line and a solid project-mean line."""
    label_w = 10 + 7 * max((len(r.label) for r in rows), default=4)
    plot_w, row_h, top = 320, 22, 30
    width, height = label_w + plot_w + 60, top + row_h * len(rows) + 44
    low_end = -1.0 if any((v or 0) < 0 for r in rows for v in (r.value, r.low)) else 0.0

    def x_of(v: float) -> float:
        return label_w + (v - low_end) / (1.0 - low_end) * plot_w

    parts = [
        f'<svg class="bars" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="16" font-size="{FONT + 1}" font-weight="bold">{escape(title)}</text>',
    ]
    for i, row in enumerate(rows):
        parts.append(_bar(row, top + i * row_h, row_h, label_w, x_of))
    bottom = top + row_h * len(rows)
    for tick in (low_end, (low_end + 1) / 2, 1.0):
        parts.append(
            f'<text x="{x_of(tick)}" y="{bottom + 14}" font-size="{FONT - 1}"'
            f' text-anchor="middle">{tick:g}</text>'
        )
    # The reference is labelled above the plot and the mean below it, so they never collide.
    if reference is not None:
        label = f"{reference_label} {reference:g}"
        parts.append(_vline(x_of(reference), top, bottom, label, top - 8, dashed=True))
    if mean is not None:
        parts.append(_vline(x_of(mean), top, bottom, f"mean {mean:.2f}", bottom + 28))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every data-borne text above is escaped


def _bar(row: Bar, y: float, row_h: float, label_w: float, x_of: Callable[[float], float]) -> str:
    out = (
        f'<text x="{label_w - 6}" y="{y + row_h * 0.65}" font-size="{FONT}" text-anchor="end">'
        f"{escape(row.label)}</text>"
    )
    if row.value is None:
        return out + (
            f'<text x="{label_w + 4}" y="{y + row_h * 0.65}" font-size="{FONT}"'
            ' fill="#777">not defined</text>'
        )
    x0, x1 = sorted((x_of(0.0), x_of(row.value)))  # bars grow from zero, either way
    out += (
        f'<rect class="bar" x="{x0}" y="{y + 4}" width="{x1 - x0}"'
        f' height="{row_h - 8}" fill="#4c78a8"><title>{row.value:.3f}</title></rect>'
    )
    if row.low is not None and row.high is not None:
        xl, xh, ym = x_of(row.low), x_of(row.high), y + row_h / 2
        out += (
            f'<g class="ci" stroke="#111" stroke-width="1.2"><line x1="{xl}" y1="{ym}"'
            f' x2="{xh}" y2="{ym}"/><line x1="{xl}" y1="{ym - 5}" x2="{xl}" y2="{ym + 5}"/>'
            f'<line x1="{xh}" y1="{ym - 5}" x2="{xh}" y2="{ym + 5}"/>'
            f"<title>95% CI {row.low:.3f} – {row.high:.3f}</title></g>"
        )
    return out + (
        f'<text x="{x_of(max(row.value, row.high or row.value)) + 4}" y="{y + row_h * 0.65}"'
        f' font-size="{FONT - 1}">{row.value:.2f}</text>'
    )


def _vline(
    x: float, top: float, bottom: float, text: str, text_y: float, *, dashed: bool = False
) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    colour = "#c0392b" if dashed else "#222"
    return (
        f'<line x1="{x}" y1="{top - 4}" x2="{x}" y2="{bottom}" stroke="{colour}"{dash}/>'
        f'<text x="{x + 3}" y="{text_y}" font-size="{FONT - 1}" fill="{colour}">'
        f"{escape(text)}</text>"
    )
