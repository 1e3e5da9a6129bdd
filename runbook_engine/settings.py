"""Engine settings: explicit values passed in, never read from the environment at import."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from runbook_engine.errors import RunbookError


@dataclass(frozen=True)
class AwsSettings:
    """How the engine calls AWS (runbook_engine.aws). ``None`` means "what boto3's standard
    configuration says": the credential chain, ``AWS_PROFILE``, ``AWS_REGION``,
    ``AWS_ENDPOINT_URL`` and the per-service ``AWS_ENDPOINT_URL_<SERVICE>`` settings."""

    profile: str | None = None
    region: str | None = None  # None: the session's region, else Settings.region
    endpoint_url: str | None = None
    max_workers: int = 10  # threads that run boto3 calls off the event loop
    call_timeout: float = 25.0  # seconds per API call (ssm-reference §4.12)
    connect_timeout: float = 10.0
    # Throttling retry (ssm-reference §2.4): a throttled call is retried with jittered
    # exponential backoff for at most this long (AWS allows 0-3600 s) and this many times.
    throttle_retry_seconds: float = 60.0
    throttle_max_retries: int = 8
    throttle_base_delay: float = 0.2
    throttle_max_delay: float = 5.0
    poll_interval: float = 5.0  # waiting actions: seconds between polls, before jitter
    poll_jitter: float = 0.2  # +/- this fraction of poll_interval, so pollers drift apart
    identity_from_session: bool = False  # global:ACCOUNT_ID / REGION from STS and the session


@dataclass(frozen=True)
class Settings:
    region: str = "us-east-1"
    account_id: str = "000000000000"
    partition: str = "aws"
    principal: str | None = None  # who starts and signals; default: the OS user
    step_budget: int = 10_000  # step runs per execution before it is stopped as a runaway
    poll_interval: float = 0.5  # seconds between looks for signals and stops from elsewhere
    lease_seconds: float = 30.0  # how long a claim on an execution lasts without renewal
    aws: AwsSettings = field(default_factory=AwsSettings)
    # Parameter Store ({{ssm:}} defaults, aws:invokeWebhook integrations, `runbook param`):
    # "local" keeps parameters in the state database, "aws" uses AWS SSM through ctx.aws.
    parameter_store: Literal["local", "aws"] = "local"
    parameter_key_file: str | None = None  # SecureString key; None: $XDG_CONFIG_HOME/runbook/
    ramp_up: bool = True  # rate control starts 1 target, then 2, 4 ... up to MaxConcurrency
    # A driver run until_waiting parks a step whose timer (aws:sleep, a retry wait) is
    # further away than this many seconds, freeing its worker; None: timers hold it.
    park_timers_after: float | None = None


class SettingsError(RunbookError):
    """An environment variable with a value the engine does not understand."""

    code = "ValidationException"


def settings_from_environment(environ: Mapping[str, str], **values: Any) -> Settings:
    """Settings for the ``runbook`` command: ``values`` plus what the environment says
    (read when a command runs, never at import):

    - ``RUNBOOK_PARAMETER_STORE``: ``local`` (default) or ``aws``;
    - ``RUNBOOK_PARAMETER_KEY_FILE``: the SecureString key file;
    - ``RUNBOOK_AWS_IDENTITY=1``: ``global:ACCOUNT_ID``/``REGION`` from the AWS session.

    boto3 reads its own variables (``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``...).
    """
    store = environ.get("RUNBOOK_PARAMETER_STORE") or "local"
    if store not in ("local", "aws"):
        raise SettingsError(f"RUNBOOK_PARAMETER_STORE must be local or aws, not {store!r}")
    settings = Settings(**values)
    identity = environ.get("RUNBOOK_AWS_IDENTITY", "").lower() in ("1", "true", "yes")
    return replace(
        settings,
        parameter_store="aws" if store == "aws" else "local",
        parameter_key_file=environ.get("RUNBOOK_PARAMETER_KEY_FILE") or None,
        aws=replace(settings.aws, identity_from_session=identity),
    )
