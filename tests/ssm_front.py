"""A loopback HTTP endpoint in front of moto_server for the Run Command states moto lacks.

moto's Run Command ends every command ``Success`` the moment it is sent, with exit code 0
and no output, and does not implement ListCommandInvocations or CancelCommand. To test a
command that runs for a while, fails, prints more than the API keeps, or is cancelled,
the engine's SSM traffic goes (``AWS_ENDPOINT_URL_SSM``) through this front: every
request is forwarded to moto_server unchanged, and for a command whose ``Comment`` names
a :class:`Script` the front rewrites what moto answers about it the way SSM would
answer. The engine still talks real HTTP through boto3; SendCommand still reaches moto.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

PLUGIN_OUTPUT_LIMIT, STDOUT_LIMIT, STDERR_LIMIT = 2500, 24_000, 8_000


@dataclass
class Node:
    """What one node's invocation ends with."""

    status: str = "Success"
    code: int = 0
    stdout: str = ""
    stderr: str = ""
    details: str | None = None


@dataclass
class Script:
    """How a command goes: ``InProgress`` for ``polls`` ListCommands answers (None: until
    cancelled), then ``status``; per-node outcomes (default: Success, exit 0)."""

    status: str = "Success"
    polls: int | None = 0
    nodes: dict[str, Node] = field(default_factory=dict)
    others: Node = field(default_factory=Node)  # nodes not named in ``nodes``
    plugins: tuple[str, ...] = ()  # several plugins: GetCommandInvocation needs PluginName
    hide_instance_ids: bool = False  # as SSM shows a command sent by Targets
    poll_errors: tuple[tuple[int, str], ...] = ()  # the first polls answer these errors
    send_delay: float = 0.0  # seconds SendCommand takes to answer


@dataclass
class _Command:
    script: Script
    instance_ids: list[str]
    polls: int = 0
    errors: int = 0
    cancelled: bool = False


class RunCommandFront:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.scripts: dict[str, Script] = {}  # by Comment
        self.commands: dict[str, _Command] = {}  # by CommandId
        self.calls: list[str] = []
        self.access_keys: list[str] = []  # who signed each SendCommand
        self.lock = threading.Lock()
        self.polled = threading.Condition(self.lock)
        self.url = ""

    # -- what the tests read ---------------------------------------------------------------

    def polls(self, command_id: str) -> int:
        return self.commands[command_id].polls

    def cancelled(self, command_id: str) -> bool:
        return self.commands[command_id].cancelled

    def wait_for_polls(self, count: int, timeout: float = 30) -> bool:
        """Block until some scripted command was polled ``count`` times."""
        with self.polled:
            return self.polled.wait_for(
                lambda: any(c.polls >= count for c in self.commands.values()), timeout
            )

    # -- the exchange ----------------------------------------------------------------------

    def forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(
            self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=30
        )
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
            connection.request("POST", path, body=body, headers=sent)
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()

    def handle(self, operation: str, request: dict[str, Any], upstream: Any) -> tuple[int, Any]:
        """(status, body) for one SSM call; ``upstream()`` forwards it to moto."""
        self.calls.append(operation)
        command = self.commands.get(str(request.get("CommandId")))
        if operation == "SendCommand":
            status, answer = upstream()
            script = self.scripts.get(str(request.get("Comment") or ""))
            if status == 200 and script is not None:
                sent = answer["Command"]
                ids = list(request.get("InstanceIds") or sent.get("InstanceIds") or [])
                self.commands[sent["CommandId"]] = _Command(script, ids)
            return status, answer
        if command is None:
            if operation in ("CancelCommand", "ListCommandInvocations"):
                return 400, {"__type": "InvalidCommandId", "message": "not a scripted command"}
            return upstream()
        if operation == "CancelCommand":
            command.cancelled = True
            return 200, {}
        if operation == "ListCommands":
            if command.errors < len(command.script.poll_errors):
                status, code = command.script.poll_errors[command.errors]
                command.errors += 1
                return status, {"__type": code, "message": f"scripted {code}"}
            status, answer = upstream()
            command.polls += 1
            self.polled.notify_all()
            for listed in answer.get("Commands") or []:
                listed["Status"] = listed["StatusDetails"] = self._status(command)
                if command.script.hide_instance_ids:
                    listed["InstanceIds"] = []
            return status, answer
        if operation == "GetCommandInvocation":
            instance_id = str(request["InstanceId"])
            if command.script.plugins and not request.get("PluginName"):
                return 400, {"__type": "InvalidPluginName", "message": "PluginName is needed"}
            return 200, self._invocation(command, instance_id, request)
        if operation == "ListCommandInvocations":
            wanted = request.get("InstanceId")
            ids = [i for i in command.instance_ids if wanted in (None, i)]
            return 200, {"CommandInvocations": [self._listed(command, i) for i in ids]}
        return upstream()

    def _status(self, command: _Command) -> str:
        if command.cancelled:
            return "Cancelled"
        limit = command.script.polls
        if limit is None or command.polls <= limit:
            return "InProgress"
        return command.script.status

    def _node(self, command: _Command, instance_id: str) -> Node:
        if command.cancelled:
            return Node("Cancelled", -1, details="Cancelled")
        return command.script.nodes.get(instance_id, command.script.others)

    def _invocation(
        self, command: _Command, instance_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        node = self._node(command, instance_id)
        return {
            "CommandId": request["CommandId"],
            "InstanceId": instance_id,
            "PluginName": request.get("PluginName") or "aws:runShellScript",
            "ResponseCode": node.code,
            "Status": node.status,
            "StatusDetails": node.details or node.status,
            "StandardOutputContent": node.stdout[:STDOUT_LIMIT],
            "StandardErrorContent": node.stderr[:STDERR_LIMIT],
        }

    def _listed(self, command: _Command, instance_id: str) -> dict[str, Any]:
        node = self._node(command, instance_id)
        text = node.stdout + ("\n----------ERROR-------\n" + node.stderr if node.stderr else "")
        plugins = command.script.plugins or ("aws:runShellScript",)
        return {
            "CommandId": "",
            "InstanceId": instance_id,
            "InstanceName": f"name-of-{instance_id}",
            "Status": node.status,
            "StatusDetails": node.details or node.status,
            "CommandPlugins": [
                {
                    "Name": name,
                    "Status": node.status,
                    "ResponseCode": node.code,
                    "Output": f"[{name}] {text}"[:PLUGIN_OUTPUT_LIMIT],
                }
                for name in plugins
            ],
        }


def _handler(front: RunCommandFront) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers.items())
            target = self.headers.get("X-Amz-Target", "")
            operation = target.rpartition(".")[2]

            def upstream() -> tuple[int, Any]:
                status, raw = front.forward(self.path, headers, body)
                return status, json.loads(raw or b"{}")

            request = json.loads(body or b"{}")
            if operation == "SendCommand":
                signed = self.headers.get("Authorization", "")
                key = signed.partition("Credential=")[2].partition("/")[0]
                front.access_keys.append(key)
            script = front.scripts.get(str(request.get("Comment") or ""))
            if operation == "SendCommand" and script is not None:
                time.sleep(script.send_delay)
            with front.lock:
                status, answer = front.handle(operation, request, upstream)
            data = json.dumps(answer, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_front(upstream: str) -> Iterator[RunCommandFront]:
    front = RunCommandFront(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(front))
    front.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield front
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
