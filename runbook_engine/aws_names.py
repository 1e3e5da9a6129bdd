"""AWS service and operation names as runbooks write them, resolved against botocore's
models (loaded lazily, once per service): shared by the validator and the AWS caller."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

_READ_ONLY_API = re.compile(r"^(Describe|Get|List|Search|Lookup|BatchGet|Query|Scan|Head|Select)")


def read_only_api(api: str) -> bool:
    """Whether an operation, by its name as a runbook writes it, only reads (as AWS's
    execution preview classifies ``aws:executeAwsApi``: ``Describe*``, ``Get*``, ...)."""
    return _READ_ONLY_API.match(api[:1].upper() + api[1:]) is not None


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


def service_model_name(service: str) -> str | None:
    """The botocore model name a boto3 client name (or alias) stands for, or ``None``."""
    return _services().get(service.strip().lower())


def operation_name(service: str, api: str) -> str | None:
    """The PascalCase operation ``api`` names in ``service``, or ``None`` if there is none."""
    model = _services().get(service.strip().lower())
    if model is None:
        return None
    return _operations(model).get(_fold(api.strip()))


@cache
def _service_model(model_name: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(model_name)


def streams(service: str, api: str) -> bool:
    """Does the operation stream its request or response (S3 GetObject, Lambda Invoke)?"""
    model, operation = _services().get(service.strip().lower()), operation_name(service, api)
    if model is None or operation is None:
        return False
    shape = _service_model(model).operation_model(operation)
    return bool(shape.has_streaming_input or shape.has_streaming_output)
