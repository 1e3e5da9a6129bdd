"""What the AWS-calling actions share: the not-configured reason, and the check that a
``Service``/``Api`` pair names a real AWS operation.

Service and operation names come from botocore's bundled models. The list of services
is read once; a service model is read only when a document names that service, and only
its operation names are kept, so validating hundreds of documents stays fast.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from functools import cache
from typing import Any

from runbook_engine.diagnostics import Finding
from runbook_engine.inputs import Input, contains_expression, field_

NO_AWS_BACKEND = "needs the AWS backend, which is not configured in this version"


@cache
def _loader() -> Any:
    import botocore.loaders

    return botocore.loaders.create_loader()


@cache
def _services() -> dict[str, str]:
    """boto3 client names (lower case) -> the model name botocore loads."""
    from botocore.utils import SERVICE_NAME_ALIASES

    names = _loader().list_available_services("service-2")
    services = {name.lower(): name for name in names}
    for alias, target in SERVICE_NAME_ALIASES.items():
        if target in names:
            services[alias.lower()] = target
    return services


@cache
def _operations(service: str) -> dict[str, str]:
    """Operation names of one service by their folded form -> the PascalCase name.

    Reads the bare service-2 model (no SDK extras: only the operation names are needed).
    """
    loader = _loader()
    version = loader.determine_latest_version(service, "service-2")
    model = loader.load_data(f"{service}/{version}/service-2")
    return {_fold(name): name for name in model["operations"]}


def _fold(name: str) -> str:
    """``DescribeInstances``, ``describe_instances`` and ``describeInstances`` alike.

    Real runbooks write all three; AWS maps the name to the boto3 method either way.
    """
    return name.replace("_", "").lower()


def operation_name(service: str, api: str) -> str | None:
    """The PascalCase operation ``api`` names in ``service``, or ``None`` if there is none."""
    model = _services().get(service.strip().lower())
    if model is None:
        return None
    return _operations(model).get(_fold(api.strip()))


def check_service_and_api(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    """``Service`` must be a boto3 client name and ``Api`` one of its operations.

    Only literal values are checked; the API parameters are passed on unchecked.
    """
    service, api = inputs.get("Service"), inputs.get("Api")
    if not isinstance(service, str) or contains_expression(service):
        return []
    model = _services().get(service.strip().lower())
    if model is None:
        return [Finding(("Service",), f"unknown AWS service {service!r} (Service takes a boto3 "
                                      "client name such as ec2, ssm or rds)")]
    if not isinstance(api, str) or contains_expression(api):
        return []
    operations = _operations(model)
    if _fold(api.strip()) not in operations:
        message = f"service {service!r} has no operation {api!r}"
        close = difflib.get_close_matches(_fold(api.strip()), list(operations), n=1)
        if close:
            message += f"; did you mean {operations[close[0]]!r}?"
        return [Finding(("Api",), message)]
    return []


SERVICE_AND_API: Mapping[str, Input] = {
    "Service": field_("String", required=True, description="boto3 client name, e.g. ec2"),
    "Api": field_("String", required=True, description="operation name, e.g. DescribeInstances"),
}
"""The inputs every AWS-API action has; the other keys are the operation's parameters."""

PROPERTY_CHECK_INPUTS: Mapping[str, Input] = {
    **SERVICE_AND_API,
    "PropertySelector": field_("String", required=True, description="JSONPath into the response"),
    "DesiredValues": field_("StringList", required=True,
                            description="accepted values, compared as Python str() (True, 16)"),
}
"""Inputs of aws:assertAwsResourceProperty and aws:waitForAwsResourceProperty."""


def check_property_selector(inputs: Mapping[str, Any], static: bool) -> list[Finding]:
    """A selector without the leading ``$`` works on AWS (real runbooks write ``Status``
    and ``Attributes.KmsMasterKeyId``): warn and read it from the root."""
    selector = inputs.get("PropertySelector")
    if isinstance(selector, str) and not contains_expression(selector):
        text = selector.strip()
        if not text.startswith("$"):
            return [Finding(("PropertySelector",),
                            f"PropertySelector should be a JSONPath starting with '$'; "
                            f"{text!r} is read as '$.{text}'", severity="warning")]
    return []
