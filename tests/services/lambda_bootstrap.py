"""The entrypoint of the test Lambda runtime image (copied to /var/runtime/bootstrap.py).

moto's Docker Lambda backend runs the image with the arguments ``[handler, event-json]``,
code mounted at /var/task, and reads the container's output: stderr, then stdout, the LAST
line being the response, and a non-zero exit code marking a function error. This does what
the AWS Python runtime does for one invocation under that contract: import
``<module>.<function>`` from /var/task, call it with the event and a context object, and
print the JSON result last. An uncaught exception becomes AWS's error document
``{"errorMessage", "errorType", "stackTrace"}`` as the last line, with exit code 1, and so
does running past the function's timeout (moto itself waits up to 300 s). The
START/END/REPORT lines and the ``[ERROR]`` record go to stderr, where Lambda's log is.

It runs on the bare interpreter of the image: standard library only.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import sys
import time
import traceback
import uuid
from typing import Any

TASK_ROOT = "/var/task"


class LambdaContext:
    """The attributes and method handlers use from AWS's context object."""

    def __init__(self, request_id: str, started: float) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[{self.function_version}]{request_id}"
        self.identity = None
        self.client_context = None
        self._deadline = started + _timeout()

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _Stdout:
    """sys.stdout, remembering whether what was written so far ends a line."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.at_line_start = True

    def write(self, text: str) -> int:
        if text:
            self.at_line_start = text.endswith("\n")
        return int(self._stream.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _load(handler: str) -> Any:
    module_path, _, function = handler.rpartition(".")
    if not module_path or not function:
        raise ValueError(f"Bad handler '{handler}': expected <module>.<function>")
    module = importlib.import_module(module_path.replace("/", "."))
    return getattr(module, function)


def _error_document(error: BaseException) -> dict[str, Any]:
    frames = traceback.extract_tb(error.__traceback__)[1:]  # from the handler down
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": traceback.format_list(frames),
    }


def _timeout() -> float:
    return float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))


def _stop_at_timeout(request_id: str, stdout: _Stdout) -> None:
    """Past the function's timeout, end the invocation as AWS does: the error document
    ``Task timed out after N seconds`` as the answer, whatever the handler is doing."""

    def timed_out(signum: int, frame: object) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        message = f"{stamp} {request_id} Task timed out after {_timeout():.2f} seconds"
        try:
            stdout.flush()
            sys.stderr.flush()
        except RuntimeError:  # interrupted in the middle of a write: write around it
            pass
        os.write(2, f"{message}\nEND RequestId: {request_id}\n".encode())
        os.write(1, ("\n" + json.dumps({"errorMessage": message}) + "\n").encode())
        os._exit(1)

    signal.signal(signal.SIGALRM, timed_out)
    signal.setitimer(signal.ITIMER_REAL, _timeout())


def main(argv: list[str]) -> int:
    handler, event_text = argv[1], argv[2] if len(argv) > 2 else "{}"
    request_id = str(uuid.uuid4())
    started = time.monotonic()
    sys.path.insert(0, TASK_ROOT)
    stdout = sys.stdout = _Stdout(sys.stdout)
    logging.basicConfig(
        stream=sys.stderr,
        format=f"[%(levelname)s]\t%(asctime)s\t{request_id}\t%(message)s",
    )  # the root logger at WARNING, as in AWS's runtime
    version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    print(f"START RequestId: {request_id} Version: {version}", file=sys.stderr, flush=True)
    _stop_at_timeout(request_id, stdout)
    try:
        result = _load(handler)(json.loads(event_text), LambdaContext(request_id, started))
        answer, code = json.dumps(result), 0
    except Exception as error:
        document = _error_document(error)
        print(f"[ERROR] {document['errorType']}: {document['errorMessage']}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        answer, code = json.dumps(document), 1
    signal.setitimer(signal.ITIMER_REAL, 0)
    elapsed = (time.monotonic() - started) * 1000
    print(f"END RequestId: {request_id}", file=sys.stderr)
    print(f"REPORT RequestId: {request_id}\tDuration: {elapsed:.2f} ms", file=sys.stderr)
    sys.stderr.flush()
    stdout.write(("" if stdout.at_line_start else "\n") + answer + "\n")  # a line of its own
    stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
