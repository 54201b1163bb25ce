"""A vertical bar chart: one bar per labelled value, the value written above each bar."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

from iotpki.protocols.console.svg.markup import element, svg, text

WIDTH, HEIGHT = 720, 240
MARGIN_TOP, MARGIN_BOTTOM, MARGIN_SIDE = 24, 40, 12


def bar_chart(title: str, bars: Sequence[tuple[str, int]], *, highlight: int = 0,
              width: int = WIDTH) -> Markup:
    """`highlight`: how many leading bars are drawn in the warning colour."""
    count = max(len(bars), 1)
    slot = (width - 2 * MARGIN_SIDE) / count
    top = max((value for _, value in bars), default=0) or 1
    usable = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    body = [element("line", x1=MARGIN_SIDE, y1=HEIGHT - MARGIN_BOTTOM, x2=width - MARGIN_SIDE,
                    y2=HEIGHT - MARGIN_BOTTOM, class_="axis")]
    for index, (label, value) in enumerate(bars):
        height = usable * value / top
        x = MARGIN_SIDE + index * slot + slot * 0.15
        y = HEIGHT - MARGIN_BOTTOM - height
        body.append(element("rect", element("title", f"{label}: {value}"), x=f"{x:.1f}",
                            y=f"{y:.1f}", width=f"{slot * 0.7:.1f}", height=f"{height:.1f}",
                            class_="bar warn" if index < highlight else "bar"))
        centre = x + slot * 0.35
        body.append(text(centre, y - 6, f"{value:,}", class_="value", text_anchor="middle"))
        body.append(text(centre, HEIGHT - MARGIN_BOTTOM + 16, label, class_="label",
                         text_anchor="middle"))
    return svg(width, HEIGHT, title, body, class_="chart")
