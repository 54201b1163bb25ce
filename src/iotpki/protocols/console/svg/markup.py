"""Building SVG elements as escaped text."""

from __future__ import annotations

from html import escape

from markupsafe import Markup


def attributes(values: dict[str, object]) -> str:
    return " ".join(f'{k.rstrip("_").replace("_", "-")}="{escape(str(v))}"'
                    for k, v in values.items() if v is not None)


def element(tag: str, content: str = "", **values: object) -> str:
    return f"<{tag} {attributes(values)}>{content}</{tag}>"


def text(x: float, y: float, content: str, **values: object) -> str:
    return element("text", escape(content), x=f"{x:.1f}", y=f"{y:.1f}", **values)


def svg(width: int, height: int, title: str, body: list[str], **values: object) -> Markup:
    """The picture, with a title for screen readers (`role="img"`, `aria-label`)."""
    return Markup(element("svg", element("title", escape(title)) + "".join(body),
                          xmlns="http://www.w3.org/2000/svg", viewBox=f"0 0 {width} {height}",
                          width=width, height=height, role="img", aria_label=title, **values))
