"""The step graph as an inline SVG, drawn on the server: the dashboard runs no script.

Layout, in the manner of a layered (Sugiyama-style) drawing kept deliberately simple:
edges that go back (loops, retries through ``onFailure: step:X`` to an earlier step) are
found by a depth-first walk from the first step and set aside; the rest is a DAG whose
``topological_generations`` are the rows, top to bottom; within a row, steps keep their
document order. Forward edges are curves from the bottom of one box to the top of the
next; edges set aside are drawn as arcs on the right-hand side. Every text is escaped.
Colours come from the page's CSS classes (``st-<Status>``, ``edge-<kind>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx
from markupsafe import Markup, escape

from runbook_engine.graph import END

ROW_HEIGHT = 86
BOX_HEIGHT = 42
GAP = 28
MARGIN = 16
CHAR_WIDTH = 7.2  # of the 12px monospace the CSS sets for node text
MIN_BOX, MAX_BOX = 120, 260
MAX_LABEL = 42
KINDS = ("next", "nextStep", "onFailure", "onCancel", "choice", "default", "loop")


@dataclass
class _Box:
    node: str
    row: int
    x: float = 0.0
    width: float = MIN_BOX

    @property
    def y(self) -> float:
        return MARGIN + self.row * ROW_HEIGHT

    @property
    def cx(self) -> float:
        return self.x + self.width / 2


def back_edges(graph: nx.DiGraph) -> set[tuple[str, str]]:
    """Edges that close a cycle, seen from the start node in document order."""
    order = {node: index for index, node in enumerate(graph.nodes)}
    start = graph.graph.get("start")
    roots = ([start] if start in graph else []) + list(graph.nodes)
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    found: set[tuple[str, str]] = set()
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(sorted(graph.successors(root), key=order.__getitem__)))]
        while stack:
            node, successors = stack[-1]
            following = next(successors, None)
            if following is None:
                state[node] = 2
                stack.pop()
            elif state.get(following) == 1:
                found.add((node, following))
            elif following not in state:
                state[following] = 1
                stack.append(
                    (following, iter(sorted(graph.successors(following), key=order.__getitem__)))
                )
    return found


def _layout(graph: nx.DiGraph, backwards: set[tuple[str, str]]) -> dict[str, _Box]:
    order = {node: index for index, node in enumerate(graph.nodes)}
    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    dag.add_edges_from(e for e in graph.edges if e not in backwards)
    boxes: dict[str, _Box] = {}
    rows = [sorted(row, key=order.__getitem__) for row in nx.topological_generations(dag)]
    if END in graph and len(rows) > 1 and rows[-1] != [END] and END in rows[-1]:
        rows[-1].remove(END)  # END alone at the bottom reads better
        rows.append([END])
    widths = []
    for index, row in enumerate(rows):
        for node in row:
            text = max(_title(node), str(graph.nodes[node].get("action") or ""), key=len)
            width = min(MAX_BOX, max(MIN_BOX, len(text) * CHAR_WIDTH + 24))
            boxes[node] = _Box(node, index, width=width)
        widths.append(sum(boxes[n].width for n in row) + GAP * (len(row) - 1))
    widest = max(widths, default=0)
    for row, width in zip(rows, widths, strict=True):
        x = MARGIN + (widest - width) / 2
        for node in row:
            boxes[node].x = x
            x += boxes[node].width + GAP
    return boxes


def _title(node: str) -> str:
    return "END" if node == END else node


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def graph_svg(
    graph: nx.DiGraph, statuses: Mapping[str, str] | None = None, link_prefix: str | None = None
) -> Markup:
    """The drawing; ``statuses`` colours steps (step name -> Status value), and with
    ``link_prefix`` each box links to ``{link_prefix}{step name}`` (an anchor on the page)."""
    statuses = statuses or {}
    backwards = back_edges(graph)
    boxes = _layout(graph, backwards)
    if not boxes:
        return Markup("")
    right = max(b.x + b.width for b in boxes.values())
    around = [(s, t) for s, t in graph.edges if (s, t) in backwards or boxes[t].row <= boxes[s].row]
    # Shorter ways back get the lanes nearer the drawing, so that the arcs nest.
    around.sort(key=lambda e: boxes[e[0]].row - boxes[e[1]].row)
    lanes = {edge: index + 1 for index, edge in enumerate(around)}
    labels_x = right + 14 * (len(around) + 1)
    # Room for the ways back (see _around) and their labels beside them.
    longest = max((len(str(d.get("label") or "")) for *_, d in graph.edges(data=True)), default=0)
    arc_room = 14 * (len(around) + 2) + min(longest, MAX_LABEL) * CHAR_WIDTH * 0.9
    width = right + MARGIN + arc_room
    height = max(b.y for b in boxes.values()) + BOX_HEIGHT + MARGIN
    parts = [
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}"'
        f' height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img"'
        f' aria-label="step graph">',
        "<defs>",
        *(
            f'<marker id="arrow-{kind}" class="arrow edge-{kind}" viewBox="0 0 10 10" refX="9"'
            ' refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            '<path d="M0,0 L10,5 L0,10 z"/></marker>'
            for kind in KINDS
        ),
        "</defs>",
    ]
    for source, target, data in graph.edges(data=True):
        a, b = boxes[source], boxes[target]
        kind = data.get("kind") if data.get("kind") in KINDS else "next"
        lane = lanes.get((source, target))
        if lane is not None:
            path, label_y = _around(a, b, right + 14 * lane, lane)
            label_x = labels_x
        else:
            sy, ty = a.y + BOX_HEIGHT, b.y
            middle = (sy + ty) / 2
            path = (
                f"M{a.cx:.1f},{sy:.1f} C{a.cx:.1f},{middle:.1f} {b.cx:.1f},{middle:.1f}"
                f" {b.cx:.1f},{ty:.1f}"
            )
            label_x, label_y = (a.cx + b.cx) / 2 + 4, middle + 4
        label = str(data.get("label") or "")
        parts.append(
            f'<g class="edge edge-{kind}"><title>{escape(_title(source))} → '
            f"{escape(_title(target))}{': ' if label else ''}{escape(label)}</title>"
            f'<path d="{path}" marker-end="url(#arrow-{kind})"/>'
        )
        if label:
            parts.append(
                f'<text x="{label_x:.1f}" y="{label_y:.1f}">'
                f"{escape(_short(label, MAX_LABEL))}</text>"
            )
        parts.append("</g>")
    for node, box in boxes.items():
        parts.append(_node(graph, box, statuses.get(node), link_prefix))
    parts.append("</svg>")
    return Markup("".join(parts))


def _around(a: _Box, b: _Box, lane: float, index: int) -> tuple[str, float]:
    """A way back: out of the source's bottom into the gap below its row, right to a lane
    beside the drawing, up to the gap above the target's row, and into the target's top,
    so that it crosses no box. Returns the path and where its label goes."""
    start_x, end_x = a.x + a.width - 14, b.x + b.width - 14
    below = a.y + BOX_HEIGHT + 8 + 3 * (index % 4)
    above = b.y - 8 - 3 * (index % 4)
    r = 5
    path = (
        f"M{start_x:.1f},{a.y + BOX_HEIGHT:.1f} V{below - r:.1f}"
        f" Q{start_x:.1f},{below:.1f} {start_x + r:.1f},{below:.1f} H{lane - r:.1f}"
        f" Q{lane:.1f},{below:.1f} {lane:.1f},{below - r:.1f} V{above + r:.1f}"
        f" Q{lane:.1f},{above:.1f} {lane - r:.1f},{above:.1f} H{end_x + r:.1f}"
        f" Q{end_x:.1f},{above:.1f} {end_x:.1f},{above + r:.1f} V{b.y:.1f}"
    )
    return path, (below + above) / 2 + 4


def _node(graph: nx.DiGraph, box: _Box, status: str | None, link_prefix: str | None) -> str:
    state = f"st-{status}" if status else "st-none"
    if box.node == END:
        return (
            f'<g class="node end {state}"><title>END</title>'
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}"'
            f' height="{BOX_HEIGHT}" rx="21"/>'
            f'<text x="{box.cx:.1f}" y="{box.y + 26:.1f}" text-anchor="middle">END</text></g>'
        )
    action = str(graph.nodes[box.node].get("action") or "")
    limit = int((box.width - 16) / CHAR_WIDTH)
    shape = (
        f'<g class="node {state}"><title>{escape(box.node)} ({escape(action)})'
        f"{': ' + escape(status) if status else ''}</title>"
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}"'
        f' height="{BOX_HEIGHT}" rx="6"/>'
        f'<text x="{box.cx:.1f}" y="{box.y + 18:.1f}" text-anchor="middle">'
        f"{escape(_short(box.node, limit))}</text>"
        f'<text class="action" x="{box.cx:.1f}" y="{box.y + 33:.1f}" text-anchor="middle">'
        f"{escape(_short(action, limit))}</text></g>"
    )
    if link_prefix is None:
        return shape
    return f'<a href="{escape(link_prefix + box.node)}">{shape}</a>'
