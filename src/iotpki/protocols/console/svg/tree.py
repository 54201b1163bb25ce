"""A top-down tree: each node a labelled box, its children in the row below, joined by edges
(the authority hierarchy: root → issuing CAs → delegated service certificates)."""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup

from iotpki.protocols.console.svg.markup import element, svg, text

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 210, 62, 18, 44, 10


@dataclass
class TreeNode:
    title: str
    lines: tuple[str, ...] = ()
    kind: str = ""  # style classes: root, service, expiring
    children: list[TreeNode] = field(default_factory=list)

    def leaves(self) -> int:
        return sum(c.leaves() for c in self.children) or 1

    def depth(self) -> int:
        return 1 + max((c.depth() for c in self.children), default=0)


def tree(title: str, roots: list[TreeNode]) -> Markup:
    leaves = sum(r.leaves() for r in roots) or 1
    depth = max((r.depth() for r in roots), default=1)
    width = MARGIN * 2 + leaves * (BOX_W + GAP_X) - GAP_X
    height = MARGIN * 2 + depth * (BOX_H + GAP_Y) - GAP_Y
    body: list[str] = []
    start = 0
    for root in roots:
        _place(root, start, 0, body)
        start += root.leaves()
    return svg(width, height, title, body, class_="tree")


def _place(node: TreeNode, first_leaf: int, level: int, body: list[str]) -> float:
    """Draw `node` centred over its leaves; return its box's centre x."""
    slot = BOX_W + GAP_X
    centre = MARGIN + (first_leaf + node.leaves() / 2) * slot - GAP_X / 2
    top = MARGIN + level * (BOX_H + GAP_Y)
    leaf = first_leaf
    for child in node.children:
        child_centre = _place(child, leaf, level + 1, body)
        leaf += child.leaves()
        body.insert(0, element("path", d=f"M{centre:.1f},{top + BOX_H} "
                                          f"C{centre:.1f},{top + BOX_H + GAP_Y / 2} "
                                          f"{child_centre:.1f},{top + BOX_H + GAP_Y / 2} "
                                          f"{child_centre:.1f},{top + BOX_H + GAP_Y}",
                               class_="edge"))
    left = centre - BOX_W / 2
    body.append(element("rect", element("title", " · ".join((node.title, *node.lines))),
                        x=f"{left:.1f}", y=top, width=BOX_W, height=BOX_H, rx=6,
                        class_=f"node {node.kind}".strip()))
    body.append(text(left + 8, top + 18, node.title[:30], class_="node-title"))
    for n, line in enumerate(node.lines[:2]):
        body.append(text(left + 8, top + 36 + n * 15, line[:36], class_="node-text"))
    return centre
