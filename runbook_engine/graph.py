"""The step graph: every transition a runbook can take, and what is wrong with it.

:func:`build_graph` turns a :class:`~runbook_engine.model.Runbook` into a networkx
``DiGraph`` whose nodes are step names plus :data:`END`, and whose edges are the possible
transitions of ``ssm-reference.md`` §2.2. Each edge carries ``kind`` (the first way the
transition arises), ``kinds`` (every way, in the order found) and ``label`` (readable text:
a branch condition, or the kinds). Edge kinds:

* ``next``      the sequential successor (or END after the last step, or after ``isEnd``);
* ``nextStep``  an explicit ``nextStep``;
* ``onFailure`` / ``onCancel``  a ``step:X`` jump taken on failure / cancellation;
* ``choice`` / ``default``  an ``aws:branch`` choice's ``NextStep`` / the branch ``Default``;
* ``loop``      into an ``aws:loop`` body, and from the body's last step back to the loop.

:func:`check_graph` reports jumps to unknown steps, unconditional cycles (§2.6) and
unreachable steps. The graph is built from whatever the parser produced, even for
documents with other errors, so nothing here may assume well-formed inputs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from typing import Any

import networkx as nx

from runbook_engine.diagnostics import DocumentPath, Finding
from runbook_engine.inputs import ActionSchema
from runbook_engine.model import BRANCH, CONTINUE, LOOP, Runbook, Step

END = "<END>"  # the node every finished execution reaches; never a valid step name
# In the order drawings list a step's edges.
EDGE_KINDS = ("loop", "choice", "default", "next", "nextStep", "onFailure", "onCancel")
# Edges that are taken whenever the step before them succeeds: a cycle made of these alone,
# with no aws:branch on it, repeats for ever (§2.6).
_UNCONDITIONAL = frozenset({"next", "nextStep"})
_MAX_CYCLES_REPORTED = 20


def missing_target_message(target: str) -> str:
    return f"a jump names a step that does not exist: {target}"


# -- building ---------------------------------------------------------------------------


def build_graph(runbook: Runbook) -> nx.DiGraph:
    """Every possible transition of ``runbook``; jumps to unknown steps are left out."""
    graph = nx.DiGraph(name=runbook.name, start=runbook.steps[0].name if runbook.steps else None)
    for step in runbook.all_steps():
        if step.name not in graph:
            graph.add_node(step.name, action=step.action, path=step.path, is_end=step.is_end)
    graph.add_node(END)
    _add_step_list(graph, runbook.steps, after_last=END)
    return graph


def _add_step_list(graph: nx.DiGraph, steps: tuple[Step, ...], after_last: str) -> None:
    """Edges of one step list (mainSteps or a loop body); ``after_last`` follows its end."""
    for index, step in enumerate(steps):
        is_last = index + 1 == len(steps)
        following = after_last if is_last else steps[index + 1].name
        following_kind = "loop" if is_last and after_last != END else "next"
        _add_step_edges(graph, step, following, following_kind)
        if step.action == LOOP and step.steps:
            _add_edge(graph, step.name, step.steps[0].name, "loop")
            _add_step_list(graph, step.steps, after_last=step.name)
            _label_loop_back_edge(graph, step)


def _label_loop_back_edge(graph: nx.DiGraph, loop: Step) -> None:
    """The body's way back to the loop step says when it is taken: ``repeat while ...``."""
    last = loop.steps[-1].name
    inputs = loop.inputs if isinstance(loop.inputs, Mapping) else {}
    if not graph.has_edge(last, loop.name) or "loop" not in graph.edges[last, loop.name]["kinds"]:
        return
    if "LoopCondition" in inputs:
        text = f"repeat while {describe_condition(inputs['LoopCondition'])}"
    elif "Iterators" in inputs:
        text = "repeat for the next item"
    else:
        return
    data = graph.edges[last, loop.name]
    data["conditions"] = (*data["conditions"], text)
    data["label"] = _edge_label(data["kinds"], data["conditions"])


def _add_step_edges(graph: nx.DiGraph, step: Step, following: str, following_kind: str) -> None:
    name = step.name
    # What a plain success (and onFailure: Continue) leads to.
    if step.is_end:
        fallthrough: tuple[str, str] = (END, "next")
    elif step.next_step and step.action != BRANCH:
        fallthrough = (step.next_step, "nextStep")
    else:
        fallthrough = (following, following_kind)
    if step.action == BRANCH:
        choices, default = branch_targets(step)
        for target, condition, _path in choices:
            _add_edge(graph, name, target, "choice", condition)
        if default is not None:
            _add_edge(graph, name, default[0], "default")
        else:  # no choice matched and no Default: isEnd or the next step in order
            _add_edge(graph, name, *fallthrough)
        if step.on_failure == CONTINUE:
            continued = (step.next_step, "nextStep") if step.next_step else fallthrough
            _add_edge(graph, name, *(fallthrough if step.is_end else continued))
    else:
        _add_edge(graph, name, *fallthrough)
    if step.failure_target is not None:
        _add_edge(graph, name, step.failure_target, "onFailure")
    if step.cancel_target is not None:
        _add_edge(graph, name, step.cancel_target, "onCancel")


def _add_edge(
    graph: nx.DiGraph, source: str, target: str, kind: str, condition: str | None = None
) -> None:
    if target not in graph:  # an unknown step: reported by check_graph, not drawn
        return
    if graph.has_edge(source, target):
        data = graph.edges[source, target]
        if kind not in data["kinds"]:
            data["kinds"] = (*data["kinds"], kind)
        if condition is not None:
            conditions = (*data["conditions"], condition)
            data["conditions"] = conditions
        data["label"] = _edge_label(data["kinds"], data["conditions"])
        return
    conditions = (condition,) if condition is not None else ()
    graph.add_edge(
        source,
        target,
        kind=kind,
        kinds=(kind,),
        conditions=conditions,
        label=_edge_label((kind,), conditions),
    )


def _edge_label(kinds: tuple[str, ...], conditions: tuple[str, ...]) -> str:
    """A plain ``"next"`` edge stays unlabelled; a choice (or a loop's way back) shows its
    condition instead of its kind."""
    parts = [" or ".join(conditions)] if conditions else []
    if kinds != ("next",):
        hidden = ("choice", "loop") if conditions else ("choice",)
        parts.extend(k for k in kinds if k not in hidden)
    return ", ".join(parts)


Jump = tuple[str, str | None, DocumentPath]  # target, condition text, path inside the step


def branch_targets(step: Step) -> tuple[list[Jump], Jump | None]:
    """An aws:branch step's choices (target, condition, path) and its Default, as written."""
    inputs = step.inputs if isinstance(step.inputs, Mapping) else {}
    choices: list[Jump] = []
    raw_choices = inputs.get("Choices")
    if isinstance(raw_choices, list):
        for index, choice in enumerate(raw_choices):
            if isinstance(choice, Mapping) and isinstance(choice.get("NextStep"), str):
                condition = {k: v for k, v in choice.items() if k != "NextStep"}
                choices.append(
                    (
                        choice["NextStep"],
                        describe_condition(condition),
                        ("inputs", "Choices", index, "NextStep"),
                    )
                )
    default = inputs.get("Default")
    return choices, (default, None, ("inputs", "Default")) if isinstance(default, str) else None


def describe_condition(condition: Any, nested: bool = False) -> str:
    """Readable text of a branch condition: ``{{ os }} StringEquals Linux``, ``not (...)``."""
    if not isinstance(condition, Mapping):
        return _operand(condition)
    parts: list[str] = []
    for key, value in condition.items():
        if key in ("And", "Or") and isinstance(value, list):
            joined = f" {str(key).lower()} ".join(describe_condition(c, True) for c in value)
            parts.append(f"({joined})" if nested else joined)
        elif key == "Not":
            parts.append(f"not ({describe_condition(value)})")
        elif key != "Variable":
            parts.append(f"{key} {_operand(value)}")
    variable = condition.get("Variable")
    if variable is not None:
        parts.insert(0, _operand(variable))
    return " ".join(parts)


def _operand(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


# -- checking ---------------------------------------------------------------------------


def check_graph(runbook: Runbook) -> list[Finding]:
    """Unknown jump targets, unconditional cycles and unreachable steps."""
    findings = list(_missing_targets(runbook))
    names = [step.name for step in runbook.all_steps()]
    if len(set(names)) != len(names):
        # Two steps share a name (the parser says so): their edges would merge into one
        # node and show cycles and dead steps that are not in the document.
        return findings
    graph = build_graph(runbook)
    findings.extend(_unconditional_cycles(runbook, graph))
    findings.extend(_unreachable_steps(runbook, graph))
    return findings


def _jumps(step: Step) -> Iterator[Jump]:
    """Every step name written in ``step`` as a jump target, with its path in the step."""
    if step.next_step:
        yield step.next_step, None, ("nextStep",)
    if step.failure_target is not None:
        yield step.failure_target, None, ("onFailure",)
    if step.cancel_target is not None:
        yield step.cancel_target, None, ("onCancel",)
    if step.action == BRANCH:
        choices, default = branch_targets(step)
        yield from choices
        if default is not None:
            yield default


def _missing_targets(runbook: Runbook) -> Iterator[Finding]:
    names = {step.name for step in runbook.all_steps()}
    for step in runbook.all_steps():
        for target, _condition, path in _jumps(step):
            if target not in names:
                yield Finding((*step.path, *path), missing_target_message(target))


def _unconditional_cycles(runbook: Runbook, graph: nx.DiGraph) -> Iterator[Finding]:
    order = {step.name: index for index, step in enumerate(runbook.all_steps())}
    steps = {step.name: step for step in reversed(list(runbook.all_steps()))}
    branches = {name for name, step in steps.items() if step.action == BRANCH}
    unconditional = nx.DiGraph()
    unconditional.add_edges_from(
        (source, target)
        for source, target, kinds in graph.edges(data="kinds")
        if _UNCONDITIONAL.intersection(kinds) and not {source, target} & branches
    )
    cycles = itertools.islice(nx.simple_cycles(unconditional), _MAX_CYCLES_REPORTED)
    for cycle in sorted(cycles, key=lambda c: min(order.get(n, 0) for n in c)):
        start = min(range(len(cycle)), key=lambda i: order.get(cycle[i], 0))
        ordered = [*cycle[start:], *cycle[:start]]
        last = steps[ordered[-1]]
        closing_kinds = graph.edges[ordered[-1], ordered[0]]["kinds"]
        path = (*last.path, "nextStep") if "nextStep" in closing_kinds else last.path
        trail = " -> ".join([*ordered, ordered[0]])
        yield Finding(
            path,
            f"unconditional cycle: {trail} repeats for ever "
            "(no aws:branch step or onFailure jump on it)",
        )


def _unreachable_steps(runbook: Runbook, graph: nx.DiGraph) -> Iterator[Finding]:
    if not runbook.steps:
        return
    reached = nx.descendants(graph, runbook.steps[0].name) | {runbook.steps[0].name}
    yield from _report_unreached(runbook.steps, reached)


def _report_unreached(steps: tuple[Step, ...], reached: set[str]) -> Iterator[Finding]:
    for step in steps:
        if step.name not in reached:
            # One warning for an unreachable loop, not one more per body step.
            yield Finding(
                step.path,
                f"step {step.name} is never run: no transition from the first step leads to it",
                severity="warning",
            )
        else:
            yield from _report_unreached(step.steps, reached)


def check_cancel_targets(runbook: Runbook, schemas: Mapping[str, ActionSchema]) -> list[Finding]:
    """``onCancel: step:X`` where X's action may not run on cancellation (§1.7).

    A warning, not an error: AWS documents the restriction, yet a published runbook of the
    conformance corpus (which must be accepted) sends onCancel to an aws:sleep step.
    """
    by_name = {step.name: step for step in reversed(list(runbook.all_steps()))}
    findings: list[Finding] = []
    for step in runbook.all_steps():
        target = by_name.get(step.cancel_target or "")
        schema = schemas.get(target.action) if target is not None else None
        if target is not None and schema is not None and not schema.cancel_target_allowed:
            findings.append(
                Finding(
                    (*step.path, "onCancel"),
                    f"onCancel jumps to step {target.name}, but AWS does not run "
                    f"{target.action} steps after a cancel",
                    severity="warning",
                )
            )
    return findings


# -- drawing ----------------------------------------------------------------------------


def _ordered_edges(graph: nx.DiGraph) -> list[tuple[str, str, dict[str, Any]]]:
    rank = {node: index for index, node in enumerate(graph.nodes)}
    kind_rank = {kind: index for index, kind in enumerate(EDGE_KINDS)}
    return sorted(
        graph.edges(data=True),
        key=lambda e: (rank[e[0]], kind_rank.get(e[2]["kind"], 99), rank[e[1]]),
    )


def _node_text(graph: nx.DiGraph, node: str) -> str:
    action = graph.nodes[node].get("action")
    return f"{node}\n{action}" if action else node


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_DOT_STYLE = {"onFailure": "color=red, style=dashed", "onCancel": "color=orange, style=dotted"}


def to_dot(graph: nx.DiGraph) -> str:
    """Graphviz DOT text; nodes in document order, END last."""
    lines = [
        f"digraph {_dot_quote(str(graph.graph.get('name') or 'runbook'))} {{",
        "  node [shape=box, style=rounded];",
    ]
    for node in graph.nodes:
        if node == END:
            lines.append(f'  {_dot_quote(END)} [label="END", shape=doublecircle];')
        else:
            lines.append(f"  {_dot_quote(node)} [label={_dot_quote(_node_text(graph, node))}];")
    for source, target, data in _ordered_edges(graph):
        attributes = [f"label={_dot_quote(data['label'])}"] if data["label"] else []
        if data["kind"] in _DOT_STYLE:
            attributes.append(_DOT_STYLE[data["kind"]])
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  {_dot_quote(source)} -> {_dot_quote(target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return (
        text.replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("|", "#124;")
        .replace("\n", "<br/>")
    )


_MERMAID_ARROW = {"onFailure": "-.->", "onCancel": "-.->"}


def to_mermaid(graph: nx.DiGraph) -> str:
    """Mermaid flowchart text; node ids ``s0, s1, ...`` in document order, ``done`` for END."""
    ids = {node: f"s{index}" for index, node in enumerate(n for n in graph.nodes if n != END)}
    ids[END] = "done"
    lines = ["flowchart TD"]
    for node in graph.nodes:
        if node == END:
            lines.append('    done(["END"])')
        else:
            lines.append(f'    {ids[node]}["{_mermaid_text(_node_text(graph, node))}"]')
    for source, target, data in _ordered_edges(graph):
        arrow = _MERMAID_ARROW.get(data["kind"], "-->")
        label = f'|"{_mermaid_text(data["label"])}"|' if data["label"] else ""
        lines.append(f"    {ids[source]} {arrow}{label} {ids[target]}")
    return "\n".join(lines) + "\n"
