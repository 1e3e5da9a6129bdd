"""Build runbooks from YAML text in tests, with every action name known."""

from __future__ import annotations

from runbook_engine.inputs import ActionSchema
from runbook_engine.model import Runbook
from runbook_engine.validation import runbook_from_report, validate_text

ACTION_NAMES = ["approve", "assertAwsResourceProperty", "branch", "changeInstanceState", "copyImage", "createImage", "createStack", "createTags", "deleteImage", "deleteStack", "executeAutomation", "executeAwsApi", "executeScript", "executeStateMachine", "invokeLambdaFunction", "invokeWebhook", "loop", "pause", "runCommand", "runInstances", "sleep", "updateVariable", "waitForAwsResourceProperty", "runShellScript"]
PERMISSIVE = {f"aws:{n}": ActionSchema(inputs={}, extra_inputs=True) for n in ACTION_NAMES}


def runbook(text: str, name: str = "test") -> Runbook:
    """A valid runbook from YAML (any aws:* action name accepted with any inputs)."""
    return runbook_from_report(validate_text(text, f"{name}.yaml", PERMISSIVE, name=name))
