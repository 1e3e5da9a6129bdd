"""Child side of aws:executeScript (Python): runs one handler in its own interpreter.

Started as ``python _script_runner.py`` in a fresh working directory, it reads one JSON
envelope on stdin::

    {"nonce": str, "handler": str, "script": str | null,
     "attachment": {"name": str, "data": base64} | null,
     "events": any, "context": {...}}

materialises the attachment (a ``.py`` file, or a ``.zip`` extracted) in the working
directory, loads the handler, calls ``handler(events, context)`` and writes one JSON
result on stdout between two marker lines carrying the nonce, so that whatever the
script prints itself cannot be mistaken for the result::

    {"ok": true, "payload": <return value>}
    {"ok": false, "phase": "load" | "run", "type": str, "message": str, "traceback": str}

Standard library only: this file runs under whatever interpreter the engine is told to
use, with the script's own imports on ``sys.path`` (the working directory first).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import importlib
import importlib.util
import io
import json
import os
import sys
import traceback
import types
import zipfile
from typing import Any

BEGIN = "<<<runbook-result {nonce}>>>"
END = "<<<end runbook-result {nonce}>>>"
INLINE_MODULE = "script"
INLINE_FILE = "_runbook_inline_script.py"


class HandlerNotFound(Exception):
    pass


def main() -> int:
    envelope = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    result_fd = os.dup(1)  # the script may rebind sys.stdout; the result still gets out
    workdir = os.getcwd()
    sys.path[0] = workdir  # instead of this runner's own folder
    result = _outcome(envelope, workdir)
    try:
        text = json.dumps(result, default=_jsonable, allow_nan=False)
    except (TypeError, ValueError) as exc:
        text = json.dumps(_failure("run", exc, None, prefix="the handler's return value is not "
                                   "JSON-serialisable: "))
    sys.stdout.flush()
    sys.stderr.flush()
    nonce = envelope["nonce"]
    block = "\n" + BEGIN.format(nonce=nonce) + "\n" + text + "\n" + END.format(nonce=nonce) + "\n"
    os.write(result_fd, block.encode("utf-8"))
    return 0


def _outcome(envelope: dict[str, Any], workdir: str) -> dict[str, Any]:
    try:
        handler = _load(envelope, workdir)
    except BaseException as exc:  # every load problem is reported, not raised
        return _failure("load", exc, exc.__traceback__)
    try:
        payload = handler(envelope.get("events"), envelope.get("context") or {})
    except BaseException as exc:  # SystemExit too: the step fails with it
        return _failure("run", exc, exc.__traceback__)
    return {"ok": True, "payload": payload}


def _load(envelope: dict[str, Any], workdir: str) -> Any:
    handler = str(envelope.get("handler") or "")
    script = envelope.get("script") or ""
    attachment = envelope.get("attachment")
    attached_module = None
    if attachment:
        name = os.path.basename(str(attachment["name"]))
        data = base64.b64decode(attachment["data"])
        if name.lower().endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.extractall(workdir)
        else:
            with open(os.path.join(workdir, name), "wb") as handle:
                handle.write(data)
            if name.endswith(".py"):
                attached_module = name[: -len(".py")]
    if not handler:
        raise HandlerNotFound("no Handler was given")
    if "." in handler:
        module_name, function = handler.rsplit(".", 1)
        module = importlib.import_module(module_name)
    elif script.strip():
        module, function = _inline_module(script, workdir), handler
    elif attached_module is not None:
        module, function = importlib.import_module(attached_module), handler
    else:
        raise HandlerNotFound(
            f"Handler {handler!r} names no module (use file.function with a .zip attachment)"
        )
    found = getattr(module, function, None)
    if not callable(found):
        raise HandlerNotFound(f"function {function!r} is not defined in {module.__name__!r}")
    return found


def _inline_module(script: str, workdir: str) -> types.ModuleType:
    # A real file, so that tracebacks show the script's own lines; not "__main__", so that
    # an ``if __name__ == "__main__":`` block written for local testing does not run.
    path = os.path.join(workdir, INLINE_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(script)
    spec = importlib.util.spec_from_file_location(INLINE_MODULE, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[INLINE_MODULE] = module
    spec.loader.exec_module(module)
    return module


def _failure(
    phase: str, exc: BaseException, tb: types.TracebackType | None, prefix: str = ""
) -> dict[str, Any]:
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # the runner's own frames tell the user nothing
    lines = traceback.format_exception(type(exc), exc, tb)
    return {
        "ok": False,
        "phase": phase,
        "type": type(exc).__name__,
        "message": prefix + str(exc),
        "traceback": "".join(lines),
    }


def _jsonable(value: Any) -> Any:
    """What boto3 responses hold besides plain JSON: times, decimals, sets, bytes."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


if __name__ == "__main__":
    sys.exit(main())
