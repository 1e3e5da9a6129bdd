"""Actions by name, loaded from the ``runbook_engine.actions`` entry-point group.

Built-in actions come through the same door as third-party plugins.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from importlib.metadata import entry_points

from runbook_engine.errors import PluginError
from runbook_engine.inputs import ActionSchema
from runbook_engine.plugin import Action

ENTRY_POINT_GROUP = "runbook_engine.actions"


class ActionRegistry(Mapping[str, Action]):
    def __init__(self, actions: Iterable[Action]) -> None:
        self._actions: dict[str, Action] = {}
        for action in actions:
            if action.name in self._actions:
                raise PluginError(f"two actions are named {action.name}")
            self._actions[action.name] = action

    def __getitem__(self, name: str) -> Action:
        return self._actions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._actions)

    def __len__(self) -> int:
        return len(self._actions)

    def schemas(self) -> dict[str, ActionSchema]:
        return {name: action.schema for name, action in self._actions.items()}

    def with_actions(self, *extra: Action) -> ActionRegistry:
        return ActionRegistry([*(a for n, a in self._actions.items()), *extra])


@cache
def default_registry() -> ActionRegistry:
    """Every action installed in this environment."""
    actions: list[Action] = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:
            raise PluginError(f"cannot load action plugin {entry.name!r}: {exc}") from exc
        if not isinstance(loaded, Action):
            raise PluginError(f"entry point {entry.name!r} is not an action: {loaded!r}")
        actions.append(loaded)
    return ActionRegistry(actions)
