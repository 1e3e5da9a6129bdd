"""Static reference checks: what `runbook validate` says about {{ }} references, and where."""

from __future__ import annotations

import csv
import textwrap
from collections.abc import Mapping
from pathlib import Path

from runbook_engine import expressions
from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import ActionSchema
from runbook_engine.model import Runbook, Step, ValueType
from runbook_engine.validation import ValidationReport, validate_file, validate_text

# Predefined outputs per action (ssm-reference §4.24); every input accepted, so that only
# the reference checks speak.
PREDEFINED_OUTPUTS: Mapping[str, tuple[str, ...]] = {
    "approve": ("ApprovalStatus", "ApproverDecisions"),
    "assertAwsResourceProperty": (),
    "branch": (),
    "changeInstanceState": ("InstanceStates",),
    "copyImage": ("ImageId", "ImageState"),
    "createImage": ("ImageId", "ImageState"),
    "createStack": ("StackId", "StackStatus", "StackStatusReason"),
    "createTags": (),
    "deleteImage": (),
    "deleteStack": (),
    "executeAutomation": ("Output", "ExecutionId", "Status"),
    "executeAwsApi": (),
    "executeScript": ("Payload",),
    "executeStateMachine": ("executionArn", "input", "name", "output", "startDate",
                            "stateMachineArn", "status", "stopDate"),
    "invokeLambdaFunction": ("StatusCode", "FunctionError", "LogResult", "Payload"),
    "invokeWebhook": ("Response", "ResponseCode"),
    "loop": (),
    "pause": (),
    "runCommand": ("CommandId", "Status", "ResponseCode", "Output"),
    "runInstances": ("InstanceIds", "InstanceStates"),
    "sleep": (),
    "updateVariable": (),
    "waitForAwsResourceProperty": (),
}
SCHEMAS = {
    f"aws:{name}": ActionSchema(
        inputs={}, extra_inputs=True, outputs=dict.fromkeys(outputs, ValueType.STRING)
    )
    for name, outputs in PREDEFINED_OUTPUTS.items()
}


def _validate(document: str) -> ValidationReport:
    return validate_text(textwrap.dedent(document).lstrip(), "runbook.yaml", SCHEMAS)


def _said(report: ValidationReport) -> list[str]:
    return [d.format() for d in report.diagnostics]


def test_a_clean_runbook_has_nothing_to_say() -> None:
    report = _validate("""
        schemaVersion: '0.3'
        assumeRole: '{{ AutomationAssumeRole }}'
        parameters:
          AutomationAssumeRole: {type: String, default: ''}
          InstanceId: {type: String}
          dotted.name: {type: String, default: x}
          Ami: {type: String, default: '{{ ssm:/aws/service/ami:2 }}'}
          Name: {type: String, default: 'img-{{global:DATE_TIME}}-{{automation:EXECUTION_ID}}'}
        variables:
          State: {type: String, default: pending}
        mainSteps:
          - name: describe
            action: aws:executeAwsApi
            inputs: {Service: ec2, Api: DescribeInstances, InstanceIds: ['{{ InstanceId }}']}
            outputs:
              - {Name: ImageId, Selector: '$.Reservations[0].Instances[0].ImageId'}
          - name: script
            action: aws:executeScript
            inputs:
              Runtime: python3.11
              Handler: h
              Script: |
                def h(events, context):
                    return "{{ not a reference }}" + f"{{{events}}}"
              InputPayload: {image: '{{ describe.ImageId }}', d: '{{ dotted.name }}'}
          - name: each
            action: aws:loop
            inputs:
              Iterators: '{{ script.Payload }}'
              Steps:
                - name: inner
                  action: aws:updateVariable
                  inputs:
                    Name: variable:State
                    Value: '{{ each.CurrentIteratorValue }}-{{ each.CurrentIteration }}'
          - name: done
            action: aws:branch
            inputs:
              Choices:
                - {NextStep: describe, Variable: '{{ variable:State }}', StringEquals: x}
              Default: describe
            isEnd: true
        outputs: [describe.ImageId, script.Payload, inner.Nothing]
    """)
    assert _said(report) == [
        "runbook.yaml:43:45: warning: step 'inner' (aws:updateVariable) has no output "
        "'Nothing' in inner.Nothing (its outputs: none)"
    ]


def test_every_reference_error_is_named_and_located() -> None:
    report = _validate("""
        schemaVersion: '0.3'
        assumeRole: '{{ ssm:/role }}'
        parameters:
          Other: {type: String, default: a}
          Copy: {type: String, default: 'x-{{ Other }}'}
          FromStep: {type: String, default: '{{ first.Payload }}'}
        mainSteps:
          - name: first
            action: aws:executeScript
            inputs:
              Runtime: python3.11
              InputPayload:
                a: '{{ Missing }}'
                b: ['ok', {c: 'x {{ nowhere.Out }}'}]
                d: '{{ first.Nope }}'
                e: '{{ foo:bar }}'
                f: '{{ global:TODAY }}'
                g: '{{ automation:ID }}'
                h: '{{ variable:Undeclared }}'
                i: '{{ssm:/in/an/input}}'
                j: '{{ {{Other}} }}'
                k: '{{ a..b }}'
            isEnd: true
        outputs: [ghost.Output]
    """)
    assert _said(report) == [
        "runbook.yaml:2:13: error: Parameter Store reference {{ ssm:/role }} is only allowed "
        "in a parameter default",
        "runbook.yaml:5:33: error: the default of parameter 'Copy' may not refer to parameter "
        "'Other' ({{ Other }})",
        "runbook.yaml:6:37: error: the default of parameter 'FromStep' may only use ssm:, "
        "global: and automation: references, not {{ first.Payload }}",
        "runbook.yaml:13:12: error: unknown parameter 'Missing' in {{ Missing }} "
        "(not declared under parameters)",
        "runbook.yaml:14:23: error: unknown parameter or step 'nowhere' in {{ nowhere.Out }} "
        "(no step or parameter has that name)",
        "runbook.yaml:15:12: error: step 'first' (aws:executeScript) has no output 'Nope' "
        "in {{ first.Nope }} (its outputs: Payload)",
        "runbook.yaml:16:12: error: unknown namespace 'foo' in {{ foo:bar }} "
        "(known: global, automation, ssm, variable)",
        "runbook.yaml:17:12: error: unknown global variable 'global:TODAY' in "
        "{{ global:TODAY }} (known: global:ACCOUNT_ID, global:AWS_PARTITION, global:DATE, "
        "global:DATE_TIME, global:REGION)",
        "runbook.yaml:18:12: error: unknown automation variable 'automation:ID' in "
        "{{ automation:ID }} (known: automation:EXECUTION_ID)",
        "runbook.yaml:19:12: error: unknown variable 'variable:Undeclared' in "
        "{{ variable:Undeclared }} (not declared under variables)",
        "runbook.yaml:20:12: error: Parameter Store reference {{ssm:/in/an/input}} is only "
        "allowed in a parameter default",
        "runbook.yaml:21:12: error: nested expressions are not supported: {{ {{Other}} }}",
        "runbook.yaml:22:12: warning: {{ a..b }} is not a valid reference; it stays literal text",
        "runbook.yaml:24:11: error: unknown parameter or step 'ghost' in ghost.Output "
        "(no step or parameter has that name)",
    ]
    paths = {d.path for d in report.diagnostics}
    assert ("mainSteps", 0, "inputs", "InputPayload", "b", 1, "c") in paths
    assert ("parameters", "Copy", "default") in paths
    assert ("outputs", 0) in paths


def test_pseudo_parameters_only_warn() -> None:
    report = _validate("""
        schemaVersion: '0.3'
        mainSteps:
          - name: run
            action: aws:runCommand
            inputs:
              DocumentName: AWS-RunShellScript
              InstanceIds: ['{{TARGET_ID}}']
              Parameters: {commands: ['echo {{ RESOURCE_ID }}']}
    """)
    assert _said(report) == [
        "runbook.yaml:7:21: warning: {{TARGET_ID}} is a Maintenance Windows pseudo parameter; "
        "outside a maintenance window it stays literal text",
        "runbook.yaml:8:31: warning: {{ RESOURCE_ID }} is a Maintenance Windows pseudo "
        "parameter; outside a maintenance window it stays literal text",
    ]


def test_declared_pseudo_parameter_names_are_ordinary_parameters() -> None:
    report = _validate("""
        schemaVersion: '0.3'
        parameters:
          TARGET_ID: {type: String}
        mainSteps:
          - name: pause
            action: aws:sleep
            inputs: {Duration: 'PT{{ TARGET_ID }}S'}
    """)
    assert _said(report) == []


def test_loop_steps_are_checked_once_and_loop_outputs_are_predefined() -> None:
    report = _validate("""
        schemaVersion: '0.3'
        mainSteps:
          - name: each
            action: aws:loop
            inputs:
              Iterators: [a, b]
              Steps:
                - name: inner
                  action: aws:sleep
                  inputs: {Duration: '{{ each.CurrentIteratorValue }}{{ Unknown }}'}
    """)
    assert _said(report) == [
        "runbook.yaml:10:30: error: unknown parameter 'Unknown' in {{ Unknown }} "
        "(not declared under parameters)"
    ]


def test_outputs_of_actions_without_a_schema_are_not_checked() -> None:
    first = Step(name="first", action="aws:madeUp", inputs={}, path=("mainSteps", 0))
    second = Step(
        name="second",
        action="aws:sleep",
        inputs={"Duration": "{{ first.Whatever }}", "Other": "{{ second.Nope }}"},
        path=("mainSteps", 1),
    )
    runbook = Runbook(name="r", steps=(first, second), outputs=("first.Anything",))
    assert expressions.check_runbook(runbook, SCHEMAS) == [
        Finding(("mainSteps", 1, "inputs", "Other"),
                "step 'second' (aws:sleep) has no output 'Nope' in {{ second.Nope }} "
                "(its outputs: none)"),
    ]


# --------------------------------------------------------------------------- the corpus

def _corpus_documents(corpus: Path) -> list[tuple[str, str]]:
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [(row["path"], row["notes"]) for row in rows if row["path"].startswith("automation/")]


def test_the_corpus_raises_no_reference_errors(corpus: Path) -> None:
    """Every automation document loads without a reference error; the four with literal
    braces or pseudo parameters (``check:unresolved-{{ }}-refs``) at most warn."""
    documents = _corpus_documents(corpus)
    assert len(documents) == 306
    errors: list[str] = []
    warned: set[str] = set()
    for path, _notes in documents:
        report = validate_file(corpus / path, SCHEMAS)
        assert isinstance(report.document, Runbook), path
        assert report.source is not None
        for finding in expressions.check_runbook(report.document, SCHEMAS):
            diagnostic = report.source.diagnostic(
                finding.path, finding.message, severity=finding.severity
            )
            if diagnostic.is_error:
                errors.append(f"{path}: {diagnostic.format()}")
            else:
                warned.add(path)
    assert errors == []
    assert warned == {
        "automation/awslabs__aws-systems-manager/aws-PatchWindowsInASG.json",  # {{TARGET_ID}}
        # document outputs name an output the step never declares: omitted at run time
        "automation/aws-samples__aws-config-systems-manager-instance-policy/"
        "SSMManagedPolicyBestPractice__RemediationDocument.yaml",
    }
