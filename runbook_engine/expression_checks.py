"""Static checks of a runbook's ``{{ ... }}`` references, run by ``runbook validate``.

Each finding points at the exact value holding the reference (nested lists and maps
included), so the CLI can show file:line:col. Unknown names are errors, as AWS rejects
them at ``CreateDocument`` (ssm-reference §3.3 rule 5); Maintenance Windows pseudo
parameters and reference-shaped text the grammar rejects are warnings; literal braces
around text that is no reference (CSS, format strings) are silent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from runbook_engine.diagnostics import DocumentPath, Finding, Severity
from runbook_engine.expressions import (
    AUTOMATION_VARIABLES,
    GLOBALS,
    LOOP_OUTPUTS,
    MAINTENANCE_WINDOW_PSEUDO_PARAMETERS,
    NAMESPACES,
    Reference,
    looks_like_reference,
    parse_template,
)
from runbook_engine.inputs import ActionSchema
from runbook_engine.model import LOOP, Runbook, Step


def _strings(value: Any, path: DocumentPath) -> Iterator[tuple[DocumentPath, str]]:
    """Every string holding ``{{`` inside ``value``, with its path."""
    if isinstance(value, str):
        if "{{" in value:
            yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


class _ReferenceChecker:
    """Checks every reference of one runbook against what the runbook declares."""

    def __init__(self, runbook: Runbook, schemas: Mapping[str, ActionSchema]) -> None:
        self.runbook = runbook
        self.schemas = schemas
        self.steps = {step.name: step for step in runbook.all_steps()}
        self.findings: list[Finding] = []

    def add(self, path: DocumentPath, message: str, severity: Severity = "error") -> None:
        self.findings.append(Finding(path, message, severity))

    def check_value(self, value: Any, path: DocumentPath, default_of: str | None = None) -> None:
        for where, text in _strings(value, path):
            template = parse_template(text)
            for span in template.nested:
                self.add(where, f"nested expressions are not supported: {span}")
            for span in template.unparsed:
                if looks_like_reference(span[2:-2]):
                    self.add(
                        where, f"{span} is not a valid reference; it stays literal text", "warning"
                    )
            for ref in template.references:
                if default_of is not None:
                    self.check_default_reference(ref, where, default_of)
                else:
                    self.check_reference(ref, where)

    def check_default_reference(self, ref: Reference, path: DocumentPath, param: str) -> None:
        if ref.namespace in ("ssm", "global", "automation"):
            self.check_reference(ref, path, ssm_allowed=True)
        elif ref.namespace is None and ref.expression in self.runbook.parameters:
            self.add(
                path,
                f"the default of parameter {param!r} may not refer to parameter "
                f"{ref.expression!r} ({ref.text})",
            )
        elif self.is_pseudo_parameter(ref):
            self.check_reference(ref, path)
        else:
            self.add(
                path,
                f"the default of parameter {param!r} may only use ssm:, global: "
                f"and automation: references, not {ref.text}",
            )

    def is_pseudo_parameter(self, ref: Reference) -> bool:
        return (
            ref.namespace is None
            and ref.attribute is None
            and ref.name in MAINTENANCE_WINDOW_PSEUDO_PARAMETERS
            and ref.name not in self.runbook.parameters
        )

    def check_reference(
        self, ref: Reference, path: DocumentPath, ssm_allowed: bool = False
    ) -> None:
        if ref.namespace is None:
            self.check_plain(ref, path)
        elif ref.namespace == "ssm":
            if not ssm_allowed:
                self.add(
                    path,
                    f"Parameter Store reference {ref.text} is only allowed in a parameter default",
                )
        elif ref.namespace == "variable":
            if ref.attribute is not None or ref.name not in self.runbook.variables:
                self.add(
                    path,
                    f"unknown variable {ref.expression!r} in {ref.text} "
                    "(not declared under variables)",
                )
        elif ref.namespace in ("global", "automation"):
            known = GLOBALS if ref.namespace == "global" else AUTOMATION_VARIABLES
            if ref.attribute is not None or ref.name not in known:
                names = ", ".join(f"{ref.namespace}:{n}" for n in sorted(known))
                self.add(
                    path,
                    f"unknown {ref.namespace} variable {ref.expression!r} in "
                    f"{ref.text} (known: {names})",
                )
        else:
            self.add(
                path,
                f"unknown namespace {ref.namespace!r} in {ref.text} "
                f"(known: {', '.join(NAMESPACES)})",
            )

    def check_plain(self, ref: Reference, path: DocumentPath) -> None:
        if ref.expression in self.runbook.parameters:
            return
        if ref.attribute is None:
            if self.is_pseudo_parameter(ref):
                self.add(
                    path,
                    f"{ref.text} is a Maintenance Windows pseudo parameter; "
                    "outside a maintenance window it stays literal text",
                    "warning",
                )
            else:
                self.add(
                    path,
                    f"unknown parameter {ref.name!r} in {ref.text} (not declared under parameters)",
                )
            return
        self.check_step_output(ref.name, ref.attribute, path, ref.text)

    def check_step_output(
        self,
        step_name: str,
        output: str,
        path: DocumentPath,
        shown: str,
        missing_output: Severity = "error",
    ) -> None:
        step = self.steps.get(step_name)
        if step is None:
            self.add(
                path,
                f"unknown parameter or step {step_name!r} in {shown} "
                "(no step or parameter has that name)",
            )
            return
        names = self.output_names(step)
        if names is not None and output not in names:
            listed = ", ".join(sorted(names)) or "none"
            self.add(
                path,
                f"step {step_name!r} ({step.action}) has no output {output!r} "
                f"in {shown} (its outputs: {listed})",
                missing_output,
            )

    def output_names(self, step: Step) -> set[str] | None:
        """Predefined and custom outputs of ``step``; ``None`` if its action is unknown."""
        schema = self.schemas.get(step.action)
        if schema is None:
            return None
        names = set(schema.outputs) | {spec.name for spec in step.outputs}
        if step.action == LOOP:
            names |= LOOP_OUTPUTS
        return names

    def check_document_output(self, text: str, path: DocumentPath) -> None:
        """A document output names ``Step.Output``; an output the step never produces is
        only left out of the execution's outputs (§1.5), so that is a warning."""
        template = parse_template(text) if "{{" in text else None
        if template is not None and template.whole is not None:
            text = template.whole.expression
        step_name, _, output = text.strip().partition(".")
        if output:
            self.check_step_output(step_name, output, path, text, missing_output="warning")


def check_references(runbook: Runbook, schemas: Mapping[str, ActionSchema]) -> list[Finding]:
    """Every reference problem in ``runbook``, located at the exact value holding it:
    undeclared parameters, unknown steps, outputs and variables, unknown namespaces,
    ``ssm:`` outside parameter defaults, defaults referring to other parameters."""
    checker = _ReferenceChecker(runbook, schemas)
    for param in runbook.parameters.values():
        if param.has_default:
            checker.check_value(param.default, (*param.path, "default"), default_of=param.name)
    if runbook.assume_role is not None:
        checker.check_value(runbook.assume_role, ("assumeRole",))
    for step in runbook.all_steps():
        for key, value in step.inputs.items():
            if step.action == LOOP and key == "Steps":
                continue  # the body steps are checked as steps of their own
            checker.check_value(value, (*step.path, "inputs", key))
    for index, output in enumerate(runbook.outputs):
        checker.check_document_output(output, ("outputs", index))
    return checker.findings
