"""``runbook run --dry-run`` (``Engine.preview``): resolve parameters and targets, classify
every step, run nothing and store nothing.

Parameters and rate-control settings are checked as ``Engine.start`` checks them, so a
dry run refuses what a run would refuse. Targets resolve against the engine's inventory
(the file, plus Docker discovery, which only lists containers): the children a
rate-controlled automation would start, and the instances each Run Command step would
reach. A step whose ``InstanceIds``/``Targets`` depend on what earlier steps return (or on
the target parameter of a rate-controlled automation) is listed as known at run time; one
whose targets cannot be resolved says why, as the step would fail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from runbook_engine import expressions
from runbook_engine.coercion import resolve_parameters
from runbook_engine.errors import DocumentError, TargetError
from runbook_engine.inputs import contains_expression
from runbook_engine.model import Runbook, Step
from runbook_engine.parameter_access import default_lookup
from runbook_engine.preview import (
    COMMAND_CONCURRENCY,
    COMMAND_ERRORS,
    FLEET_ACTIONS,
    ChildPreview,
    FleetPreview,
    Preview,
    RateControlPreview,
    preview_runbook,
)
from runbook_engine.rate_controlled import (
    AUTOMATION_CONCURRENCY,
    AUTOMATION_ERRORS,
    check_targets,
    map_label,
)
from runbook_engine.rendering import RenderScope, render_default

if TYPE_CHECKING:
    from runbook_engine.engine import Engine, StartOptions

PREVIEW_EXECUTION_ID = "00000000-0000-0000-0000-000000000000"
RUN_TIME = "known at run time (the value comes from an earlier step or a target parameter)"


async def dry_run(
    engine: Engine,
    document: str,
    parameters: Mapping[str, Any],
    options: StartOptions,
) -> Preview:
    _text, runbook = engine.load(document)
    target_name = options.target_parameter_name
    rate_controlled = bool(target_name or options.target_maps)
    if rate_controlled:
        check_targets(
            list(runbook.parameters),
            target_name,
            options.targets,
            options.target_maps,
            options.max_concurrency,
            options.max_errors,
        )
    values = await _parameters(engine, runbook, parameters, options)
    scope = RenderScope(
        expressions.Scope(
            parameters=values,
            execution_id=PREVIEW_EXECUTION_ID,
            account_id=engine.settings.account_id,
            region=engine.settings.region,
            partition=engine.settings.partition,
        )
    )

    def load_child(name: str) -> Runbook | None:
        try:
            return engine.load(name)[1]
        except DocumentError:
            return None

    preview = preview_runbook(runbook, values, scope.render, load_child)
    fleets = {
        index: await _fleet(engine, step, scope.render)
        for index, step in enumerate(runbook.all_steps())
        if step.action in FLEET_ACTIONS and _names_instances(step)
    }
    preview = preview.with_fleet(fleets)
    if not rate_controlled:
        return preview
    rate = RateControlPreview(
        target_name,
        tuple(dict(t) for t in options.targets),
        tuple(dict(m) for m in options.target_maps),
        options.max_concurrency or AUTOMATION_CONCURRENCY,
        options.max_errors or AUTOMATION_ERRORS,
        await _children(engine, parameters, options),
    )
    return replace(preview, parameters=dict(parameters), rate_control=rate)


async def _parameters(
    engine: Engine, runbook: Runbook, given: Mapping[str, Any], options: StartOptions
) -> dict[str, Any]:
    """The parameters as a run would resolve them. With rate control, each child gets its
    own target value (checked here with a stand-in, then left out so that expressions
    using it stay unresolved) or, with TargetMaps, its own parameter set."""
    if options.target_maps:
        return {}
    checked = dict(given)
    if options.target_parameter_name:
        checked[options.target_parameter_name] = ["target"]
    lookup = await default_lookup(runbook, checked, lambda: engine.parameters)
    values = resolve_parameters(
        runbook,
        checked,
        lambda p: render_default(p, engine.settings, PREVIEW_EXECUTION_ID, engine.now(), lookup),
    )
    values.pop(options.target_parameter_name or "", None)
    return values


async def _children(
    engine: Engine, given: Mapping[str, Any], options: StartOptions
) -> tuple[ChildPreview, ...]:
    """One child per target value (resolved now, as the parent would) or TargetMaps entry."""
    if options.target_maps:
        return tuple(ChildPreview(map_label(m), {**given, **dict(m)}) for m in options.target_maps)
    name = options.target_parameter_name or ""
    values = await engine.fleet.resolve_values(options.targets)
    return tuple(ChildPreview(v, {**given, name: [v]}) for v in values)


def _names_instances(step: Step) -> bool:
    return any(step.inputs.get(key) not in (None, "", []) for key in ("InstanceIds", "Targets"))


def _as_list(value: Any) -> list[Any] | None:
    if value in (None, "", []):
        return None
    return [value] if isinstance(value, str | Mapping) else list(value)


async def _fleet(engine: Engine, step: Step, render: Callable[[Any], Any]) -> FleetPreview:
    ids = render(step.inputs.get("InstanceIds"))
    targets = render(step.inputs.get("Targets"))
    concurrency = render(step.inputs.get("MaxConcurrency"))
    errors = render(step.inputs.get("MaxErrors"))
    limits = FleetPreview(
        max_concurrency=str(COMMAND_CONCURRENCY if concurrency in (None, "") else concurrency),
        max_errors=str(COMMAND_ERRORS if errors in (None, "") else errors),
    )
    if contains_expression(ids) or contains_expression(targets):
        return replace(limits, note=RUN_TIME)
    try:
        found = await engine.fleet.resolve(_as_list(ids), _as_list(targets))
    except TargetError as exc:
        return replace(limits, note=f"cannot resolve: {exc.message}")
    if not found:
        return replace(limits, note="no instance matches: the step would fail")
    return replace(limits, instances=tuple(i.id for i in found))
