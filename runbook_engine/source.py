"""Document text -> plain Python data, plus where every key and value stands in the text.

YAML and JSON are both read here. Values are what a standard loader gives
(PyYAML's safe loader, ``json.loads``); alongside them a :class:`SourceMap`
keeps the 1-based line and column of every mapping key and every value, keyed
by its path (``("mainSteps", 2, "inputs", "Choices")``), so that every later
check can point at the offending text in the original file.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import json_source_map
import yaml

from runbook_engine.diagnostics import Diagnostic, DocumentPath, Mark

# libyaml is an order of magnitude faster when the wheel ships it.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Format = Literal["yaml", "json"]


@dataclass
class SourceMap:
    """Line/column of keys and values, by document path."""

    keys: dict[DocumentPath, Mark] = field(default_factory=dict)
    values: dict[DocumentPath, Mark] = field(default_factory=dict)

    def locate(self, path: DocumentPath) -> Mark:
        """Where the value at ``path`` starts; its nearest ancestor if it is absent."""
        for i in range(len(path), -1, -1):
            prefix = path[:i]
            mark = self.values.get(prefix)
            if mark is not None:
                return mark
        return Mark(1, 1)

    def locate_key(self, path: DocumentPath) -> Mark:
        """Where the key naming ``path`` stands (falls back to the value)."""
        mark = self.keys.get(path)
        return mark if mark is not None else self.locate(path)


@dataclass(frozen=True)
class Source:
    """A parsed document: its data and where each piece came from."""

    path: str
    text: str
    format: Format
    data: Any
    marks: SourceMap
    duplicate_keys: tuple[tuple[DocumentPath, Mark], ...] = ()

    def diagnostic(
        self,
        path: DocumentPath,
        message: str,
        *,
        severity: Literal["error", "warning"] = "error",
        at_key: bool = False,
    ) -> Diagnostic:
        mark = self.marks.locate_key(path) if at_key else self.marks.locate(path)
        return Diagnostic(
            file=self.path,
            line=mark.line,
            column=mark.column,
            path=path,
            message=message,
            severity=severity,
        )


class SourceSyntaxError(Exception):
    """The text is not well-formed YAML or JSON; carries one located diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.format())
        self.diagnostic = diagnostic


def guess_format(path: str, text: str) -> Format:
    if path.lower().endswith(".json"):
        return "json"
    if path.lower().endswith((".yaml", ".yml")):
        return "yaml"
    return "json" if text.lstrip().startswith("{") else "yaml"


def load_source(text: str, path: str = "<string>", fmt: Format | None = None) -> Source:
    """Parse ``text``; raise :class:`SourceSyntaxError` if it is not YAML/JSON."""
    fmt = fmt or guess_format(path, text)
    with _no_collections():
        if fmt == "json":
            return _load_json(text, path)
        return _load_yaml(text, path)


@contextmanager
def _no_collections() -> Iterator[None]:
    """No garbage collection while a document is parsed.

    Parsing makes a tree of nodes (tens of thousands for a 1,000-step runbook) that lives
    only until the data is built. Collections during the parse cannot free any of it, yet
    they promote it to the oldest generation, where it counts towards the next full
    collection long after reference counting has freed it: an engine that parsed a big
    runbook then walked its whole heap several times while running it. Reference
    counting frees the tree; any cycle left is found by the next collection, as ever.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _load_yaml(text: str, path: str) -> Source:
    loader = _Loader(text)
    marks = SourceMap()
    duplicates: list[tuple[DocumentPath, Mark]] = []
    try:
        node = loader.get_single_node()
        if node is None:
            data = None
        else:
            try:
                data = _OnePass(loader, marks, duplicates).build(node, ())
            except _Alias:  # shared nodes: PyYAML's constructor, then the walk
                marks, duplicates = SourceMap(), []
                data = loader.construct_document(node)
                _walk_yaml(node, (), marks, duplicates, set())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SourceSyntaxError(
            Diagnostic(path, line, column, (), f"invalid YAML: {problem or exc}")
        ) from exc
    except yaml.YAMLError as exc:
        raise SourceSyntaxError(Diagnostic(path, 1, 1, (), f"invalid YAML: {exc}")) from exc
    except (TypeError, ValueError) as exc:  # e.g. an unhashable mapping key
        raise SourceSyntaxError(Diagnostic(path, 1, 1, (), f"invalid YAML: {exc}")) from exc
    finally:
        loader.dispose()
    return Source(path, text, "yaml", data, marks, tuple(duplicates))


_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


class _Alias(Exception):
    """The document shares a node (an alias): the one-pass builder gives way."""


class _OnePass:
    """Data and source map in one walk over the composed nodes.

    PyYAML's constructor (Python even with libyaml) and the source-map walk each visit
    every node; for a 1,000-step runbook that was about half of the parse. Plain strings,
    mappings and sequences (nearly every node of a runbook) are built here; any other
    tag, a merge key, or a mapping with a non-scalar key is handed to PyYAML's
    constructor with the source-map walk for that subtree, so the result is what
    ``construct_document`` followed by ``_walk_yaml`` gives. A shared node (an alias)
    stops the builder: the caller starts again with those two.
    """

    def __init__(
        self, loader: Any, marks: SourceMap, duplicates: list[tuple[DocumentPath, Mark]]
    ) -> None:
        self._loader = loader
        self._values = marks.values
        self._keys = marks.keys
        self._marks = marks
        self._duplicates = duplicates
        self._seen: set[int] = set()

    def build(self, node: yaml.Node, path: DocumentPath) -> Any:
        if id(node) in self._seen:
            raise _Alias
        self._seen.add(id(node))
        start = node.start_mark
        self._values[path] = Mark(start.line + 1, start.column + 1)
        tag = node.tag
        if tag == _STR and isinstance(node, yaml.ScalarNode):
            return node.value
        if tag == _MAP and isinstance(node, yaml.MappingNode) and self._plain_keys(node):
            result: dict[Any, Any] = {}
            names: set[str] = set()
            for key_node, value_node in node.value:
                name = key_node.value
                child = (*path, name)
                key_start = key_node.start_mark
                key_mark = Mark(key_start.line + 1, key_start.column + 1)
                if name in names:
                    self._duplicates.append((child, key_mark))
                names.add(name)
                self._keys[child] = key_mark
                key = name if key_node.tag == _STR else self._loader.construct_object(key_node)
                result[key] = self.build(value_node, child)
            return result
        if tag == _SEQ and isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        # Anything else: PyYAML builds it, then the walk maps its subtree (after: merge
        # keys are flattened into the node while it is constructed).
        self._seen.discard(id(node))
        data = self._loader.construct_object(node, deep=True)
        if not isinstance(node, yaml.ScalarNode):
            _walk_yaml(node, path, self._marks, self._duplicates, self._seen)
        return data

    @staticmethod
    def _plain_keys(node: yaml.MappingNode) -> bool:
        """Scalar keys only, none a merge (``<<``) or a value (``=``) key."""
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value in ("<<", "="):
                return False
        return True


def _yaml_mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _walk_yaml(
    node: yaml.Node,
    path: DocumentPath,
    marks: SourceMap,
    duplicates: list[tuple[DocumentPath, Mark]],
    seen: set[int],
) -> None:
    marks.values[path] = _yaml_mark(node)
    if id(node) in seen:  # aliases may share nodes; never walk one twice
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        names: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = key_node.value
            if key == "<<":
                continue
            child = (*path, key)
            if key in names:
                duplicates.append((child, _yaml_mark(key_node)))
            names.add(key)
            marks.keys[child] = _yaml_mark(key_node)
            _walk_yaml(value_node, child, marks, duplicates, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk_yaml(item, (*path, index), marks, duplicates, seen)


def _load_json(text: str, path: str) -> Source:
    duplicate_names: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicate_names.append(key)
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise SourceSyntaxError(
            Diagnostic(path, exc.lineno, exc.colno, (), f"invalid JSON: {exc.msg}")
        ) from exc
    marks = SourceMap()
    try:
        entries = json_source_map.calculate(text)
    except Exception:  # the map is a convenience; the data already parsed
        entries = {}
    for pointer, entry in entries.items():
        doc_path = _pointer_to_path(pointer, data)
        marks.values[doc_path] = Mark(entry.value_start.line + 1, entry.value_start.column + 1)
        if entry.key_start is not None:
            marks.keys[doc_path] = Mark(entry.key_start.line + 1, entry.key_start.column + 1)
    duplicates = [
        (p, marks.keys[p]) for name in duplicate_names for p in marks.keys if p and p[-1] == name
    ]
    return Source(path, text, "json", data, marks, tuple(duplicates))


def _pointer_to_path(pointer: str, data: Any) -> DocumentPath:
    path: list[str | int] = []
    node = data
    for raw in _pointer_parts(pointer):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and part.isdigit():
            index = int(part)
            path.append(index)
            node = node[index] if index < len(node) else None
        else:
            path.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    return tuple(path)


def _pointer_parts(pointer: str) -> Iterator[str]:
    if pointer:
        yield from pointer.split("/")[1:]
