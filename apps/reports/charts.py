"""SVG plots of the manual-vs-automated comparison: a regression (scatter with the identity and
least-squares lines) and a Bland-Altman plot. Styled like apps/agreement/charts.py (its font
sizes); every data-borne text is escaped and the markup is a ``SafeString``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from apps.agreement.charts import FONT

W, H, PAD = 320, 260, 40


def _frame(title: str, x_label: str, y_label: str) -> list[str]:
    return [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}"'
        f' height="{H}" role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="14" font-size="{FONT + 1}" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{PAD}" y="{PAD - 16}" width="{W - PAD - 10}" height="{H - 2 * PAD + 16}"'
        ' fill="none" stroke="#999"/>',
        f'<text x="{W / 2}" y="{H - 6}" font-size="{FONT}" text-anchor="middle">'
        f"{escape(x_label)}</text>",
        f'<text x="12" y="{H / 2}" font-size="{FONT}" text-anchor="middle"'
        f' transform="rotate(-90 12 {H / 2})">{escape(y_label)}</text>',
    ]


def _scale(lo: float, hi: float, out_lo: float, out_hi: float):
    span = hi - lo or 1.0
    return lambda v: out_lo + (v - lo) / span * (out_hi - out_lo)


def _points(xs, ys, sx, sy, names: Sequence[str]) -> list[str]:
    return [
        f'<circle class="pt" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="#4c78a8">'
        f"<title>{escape(n)}: {x:.1f}, {y:.1f}</title></circle>"
        for x, y, n in zip(xs, ys, names, strict=True)
    ]


def regression(auto: Sequence[float], manual: Sequence[float], names: Sequence[str]) -> SafeString:
    """Manual % (x) against automated % (y), with y = x dashed and the least-squares line."""
    top = max([*auto, *manual, 1.0])
    sx = _scale(0, top, PAD, W - 10)
    sy = _scale(0, top, H - PAD, PAD - 16)
    parts = _frame("Automated vs manual (%)", "manual %", "automated %")
    parts.append(
        f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(top)}" y2="{sy(top)}" stroke="#c0392b"'
        ' stroke-dasharray="4 3"/>'
    )
    if len(set(manual)) > 1:
        slope, intercept = np.polyfit(manual, auto, 1)
        parts.append(
            f'<line class="fit" x1="{sx(0):.1f}" y1="{sy(intercept):.1f}" x2="{sx(top):.1f}"'
            f' y2="{sy(intercept + slope * top):.1f}" stroke="#222"/>'
        )
    parts += _points(manual, auto, sx, sy, names)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every data-borne text above is escaped


def bland_altman_plot(
    auto: Sequence[float],
    manual: Sequence[float],
    names: Sequence[str],
    mean_diff: float | None,
    lower: float | None,
    upper: float | None,
) -> SafeString:
    """Difference (automated - manual) against the mean, with the bias and the 95% limits."""
    means = [(a + m) / 2 for a, m in zip(auto, manual, strict=True)]
    diffs = [a - m for a, m in zip(auto, manual, strict=True)]
    extent = max([abs(d) for d in diffs] + [abs(v) for v in (lower, upper) if v is not None] + [1])
    sx = _scale(0, max([*means, 1.0]), PAD, W - 10)
    sy = _scale(-extent, extent, H - PAD, PAD - 16)
    parts = _frame("Bland-Altman (automated - manual)", "mean %", "difference %")
    for value, label, dash in (
        (mean_diff, "bias", ""),
        (lower, "-1.96 SD", "4 3"),
        (upper, "+1.96 SD", "4 3"),
    ):
        if value is None:
            continue
        parts.append(
            f'<line class="ba-{label[:4].strip("+-")}" x1="{PAD}" y1="{sy(value):.1f}"'
            f' x2="{W - 10}" y2="{sy(value):.1f}" stroke="#c0392b" stroke-dasharray="{dash}"/>'
            f'<text x="{W - 12}" y="{sy(value) - 3:.1f}" font-size="{FONT - 2}"'
            f' text-anchor="end" fill="#c0392b">{label} {value:.2f}</text>'
        )
    parts += _points(means, diffs, sx, sy, names)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every data-borne text above is escaped
