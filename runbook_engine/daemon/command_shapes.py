"""The response shapes of the Run Command operations, from the store's records.

botocore's model: ``DateTime`` members are epoch seconds; the ``StringDateTime``
members of GetCommandInvocation are ISO-8601 strings (``ExecutionElapsedTime`` an
ISO-8601 duration, as AWS writes it). GetCommandInvocation cuts stdout to 24,000
characters and stderr to 8,000, and shows them only once the invocation finished; plugin
``Output`` (at most 2,500, cut by the fleet machinery) is only in the detailed listing.
S3, CloudWatch and notification members are empty: nothing is sent there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from runbook_engine.daemon.operations import ApiError
from runbook_engine.store.commands import CommandRecord, InvocationRecord

STDOUT_LIMIT = 24_000  # GetCommandInvocation.StandardOutputContent (the model's max)
STDERR_LIMIT = 8_000


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _iso(moment: datetime | None) -> str:
    """A StringDateTime as AWS writes it: ``2026-03-01T12:00:00.123Z`` ("" when unset)."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _elapsed(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    return f"PT{max(0.0, (end - start).total_seconds()):.3f}S"


NO_NOTIFICATIONS: dict[str, Any] = {
    "NotificationArn": "",
    "NotificationEvents": [],
    "NotificationType": "",
}
NO_CLOUDWATCH: dict[str, Any] = {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False}


def command_shape(command: CommandRecord) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "CommandId": command.command_id,
        "DocumentName": command.document_name,
        "DocumentVersion": command.document_version,
        "Comment": command.comment,
        "Parameters": {k: list(v) for k, v in command.parameters.items()},
        "InstanceIds": list(command.instance_ids),
        "Targets": [dict(t) for t in command.targets],
        "RequestedDateTime": _epoch(command.requested),
        "Status": command.status,
        "StatusDetails": command.status_details,
        "OutputS3Region": "",
        "OutputS3BucketName": "",
        "OutputS3KeyPrefix": "",
        "MaxConcurrency": command.max_concurrency,
        "MaxErrors": command.max_errors,
        "TargetCount": command.target_count,
        "CompletedCount": command.completed_count,
        "ErrorCount": command.error_count,
        "DeliveryTimedOutCount": command.delivery_timed_out_count,
        "ServiceRole": "",
        "NotificationConfig": dict(NO_NOTIFICATIONS),
        "CloudWatchOutputConfig": dict(NO_CLOUDWATCH),
    }
    if command.timeout_seconds is not None:
        shape["TimeoutSeconds"] = command.timeout_seconds
        shape["ExpiresAfter"] = _epoch(
            command.requested + timedelta(seconds=command.timeout_seconds)
        )
    return shape


def _plugin_shape(plugin: Mapping[str, Any]) -> dict[str, Any]:
    shape = {
        "Name": plugin.get("Name", ""),
        "Status": plugin.get("Status", "Pending"),
        "StatusDetails": plugin.get("StatusDetails", ""),
        "ResponseCode": plugin.get("ResponseCode", -1),
        "Output": str(plugin.get("Output") or ""),
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "OutputS3Region": "",
        "OutputS3BucketName": "",
        "OutputS3KeyPrefix": "",
    }
    for key in ("ResponseStartDateTime", "ResponseFinishDateTime"):
        value = plugin.get(key)
        if isinstance(value, str) and value:
            shape[key] = datetime.fromisoformat(value).timestamp()
    return shape


def invocation_shape(
    invocation: InvocationRecord, command: CommandRecord, details: bool
) -> dict[str, Any]:
    return {
        "CommandId": invocation.command_id,
        "InstanceId": invocation.instance_id,
        "InstanceName": invocation.instance_name,
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": command.document_version,
        "RequestedDateTime": _epoch(command.requested),
        "Status": invocation.status,
        "StatusDetails": invocation.status_details,
        "TraceOutput": "",
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "CommandPlugins": [_plugin_shape(p) for p in invocation.plugins] if details else [],
        "ServiceRole": "",
        "NotificationConfig": dict(NO_NOTIFICATIONS),
        "CloudWatchOutputConfig": dict(NO_CLOUDWATCH),
    }


def get_invocation_shape(
    invocation: InvocationRecord, command: CommandRecord, plugin_name: str | None
) -> dict[str, Any]:
    status, details, code = invocation.status, invocation.status_details, invocation.response_code
    stdout, stderr = invocation.stdout, invocation.stderr
    plugins: Sequence[Mapping[str, Any]] = invocation.plugins
    name = plugins[0].get("Name", "") if len(plugins) == 1 else ""
    if plugin_name is not None:
        chosen = [p for p in plugins if p.get("Name") == plugin_name]
        if plugins and not chosen:
            raise ApiError("InvalidPluginName", f"The document has no step named {plugin_name}")
        name = plugin_name
        if chosen and len(plugins) > 1:  # one step of several: its own result and Output
            plugin = chosen[0]
            status = str(plugin.get("Status", status))
            details = str(plugin.get("StatusDetails", details))
            code = int(plugin.get("ResponseCode", code))
            stdout, stderr = str(plugin.get("Output") or ""), ""
    return {
        "CommandId": invocation.command_id,
        "InstanceId": invocation.instance_id,
        "Comment": command.comment,
        "DocumentName": command.document_name,
        "DocumentVersion": command.document_version,
        "PluginName": name,
        "ResponseCode": code,
        "ExecutionStartDateTime": _iso(invocation.start_time),
        "ExecutionElapsedTime": _elapsed(invocation.start_time, invocation.end_time),
        "ExecutionEndDateTime": _iso(invocation.end_time),
        "Status": status,
        "StatusDetails": details,
        "StandardOutputContent": stdout[:STDOUT_LIMIT] if invocation.terminal else "",
        "StandardOutputUrl": "",
        "StandardErrorContent": stderr[:STDERR_LIMIT] if invocation.terminal else "",
        "StandardErrorUrl": "",
        "CloudWatchOutputConfig": dict(NO_CLOUDWATCH),
    }
