"""aws:executeScript: handlers run in a real separate interpreter."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest

from actions.execute_script import ACTION, SCHEMA, ScriptSettings, make_action, split_result
from runbook_engine.inputs import normalize_inputs
from runbook_engine.plugin import ActionError, ActionResult, ActionTimeout
from tests.action_context import FakeContext

pytestmark = pytest.mark.anyio


async def run(inputs: dict[str, Any], ctx: FakeContext | None = None) -> ActionResult:
    assert SCHEMA.check(inputs, static=False) == []
    result = await ACTION.run(normalize_inputs(SCHEMA, inputs), ctx or FakeContext())
    assert isinstance(result, ActionResult)
    return result


def python(script: str, handler: str = "handler", **extra: Any) -> dict[str, Any]:
    return {"Runtime": "python3.11", "Handler": handler, "Script": script, **extra}


async def test_handler_gets_events_and_context_and_returns_payload() -> None:
    script = (
        "def handler(events, context):\n"
        "    print('working on', events['name'])\n"
        "    return {'greeting': 'hello ' + events['name'], 'ctx': context}\n"
    )
    ctx = FakeContext(step_name="Greet", region="eu-west-1", account_id="123456789012")
    result = await run(python(script, InputPayload={"name": "world"}), ctx)
    payload = result.outputs["Payload"]
    assert payload["greeting"] == "hello world"
    assert payload["ctx"]["automation:EXECUTION_ID"] == ctx.execution_id
    assert payload["ctx"]["global:REGION"] == "eu-west-1"
    assert payload["ctx"]["global:ACCOUNT_ID"] == "123456789012"
    assert payload["ctx"]["step_name"] == "Greet"
    assert result.response == {"Payload": payload}
    assert "working on world" in result.logs
    assert "runbook-result" not in result.logs


async def test_input_payload_may_be_json_text() -> None:
    script = "def handler(events, context):\n    return events['n'] * 2\n"
    result = await run(python(script, InputPayload='{"n": 21}'))
    assert result.outputs == {"Payload": 42}


async def test_prints_that_look_like_json_do_not_corrupt_the_result() -> None:
    script = (
        "import sys\n"
        "def handler(events, context):\n"
        "    print('{\"ok\": false}')\n"
        "    print('<<<runbook-result fake>>>')\n"
        "    sys.stderr.write('a warning\\n')\n"
        "    return ['a', 'b']\n"
    )
    result = await run(python(script))
    assert result.outputs == {"Payload": ["a", "b"]}
    assert '{"ok": false}' in result.logs and "a warning" in result.logs


async def test_uncaught_exception_fails_with_type_and_message() -> None:
    script = (
        "def helper(x):\n"
        "    raise ValueError(f'bad value {x}')\n"
        "def handler(events, context):\n"
        "    print('before the error')\n"
        "    helper(7)\n"
    )
    with pytest.raises(ActionError) as caught:
        await run(python(script))
    error = caught.value
    assert error.message == "ValueError: bad value 7"
    traceback = error.details["Traceback"][0]
    assert "in helper" in traceback and "_script_runner" not in traceback
    assert "before the error" in error.details["Logs"][0]


async def test_syntax_error_and_missing_handler_are_load_failures() -> None:
    with pytest.raises(ActionError, match=r"^cannot load the handler: SyntaxError"):
        await run(python("def handler(events, context)\n    return 1\n"))
    with pytest.raises(ActionError, match="function 'main' is not defined in 'script'"):
        await run(python("def handler(events, context):\n    return 1\n", handler="main"))


async def test_main_guard_of_the_script_does_not_run() -> None:
    script = (
        "def handler(events, context):\n    return 'called'\n"
        "if __name__ == '__main__':\n    raise SystemExit('local test block ran')\n"
    )
    assert (await run(python(script))).outputs == {"Payload": "called"}


async def test_zip_attachment_module_is_imported() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("tools.py", "def double(x):\n    return 2 * x\n")
        bundle.writestr("entry.py", "import tools\ndef main(events, context):\n"
                                    "    return tools.double(events['x'])\n")
    ctx = FakeContext(files={"bundle.zip": archive.getvalue()})
    inputs = {"Runtime": "python3.8", "Handler": "entry.main", "Attachment": "bundle.zip",
              "InputPayload": {"x": 5}}
    assert (await run(inputs, ctx)).outputs == {"Payload": 10}


async def test_py_attachment_with_a_plain_handler_name() -> None:
    ctx = FakeContext(files={"getSnapshots.py": b"def getSnapshots(events, context):\n"
                                                b"    return {'ids': ['snap-1']}\n"})
    inputs = {"Runtime": "python3.6", "Handler": "getSnapshots", "Attachment": "getSnapshots.py"}
    assert (await run(inputs, ctx)).outputs == {"Payload": {"ids": ["snap-1"]}}


async def test_missing_attachment_is_named() -> None:
    inputs = {"Runtime": "python3.11", "Handler": "a.b", "Attachment": "gone.zip"}
    with pytest.raises(ActionError, match=r"Attachment 'gone.zip' is not among the runbook's"):
        await run(inputs)


async def test_long_lists_keep_100_items_and_big_payloads_are_cut() -> None:
    result = await run(python("def handler(e, c):\n    return list(range(250))\n"))
    assert result.outputs["Payload"] == list(range(100))
    result = await run(python("def handler(e, c):\n    return {'blob': 'x' * 200000}\n"))
    output = result.outputs["Payload"]
    assert isinstance(output, str) and len(output) == 100 * 1024
    assert output.startswith('{"blob": "xxx')
    assert result.response["Payload"]["blob"] == "x" * 200000


async def test_boto3_style_values_become_json() -> None:
    script = (
        "import datetime, decimal\n"
        "def handler(e, c):\n"
        "    return {'at': datetime.datetime(2024, 1, 2, 3, 4, 5), 'n': decimal.Decimal('3')}\n"
    )
    assert (await run(python(script))).outputs == {"Payload": {"at": "2024-01-02T03:04:05", "n": 3}}
    with pytest.raises(ActionError, match="not JSON-serialisable"):
        await run(python("def handler(e, c):\n    return object()\n"))


async def test_environment_reaches_the_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    script = "import os\ndef handler(e, c):\n    return os.environ['AWS_ACCESS_KEY_ID']\n"
    assert (await run(python(script))).outputs == {"Payload": "AKIDEXAMPLE"}


async def test_script_ending_the_process_is_a_clear_failure() -> None:
    script = "import os\ndef handler(e, c):\n    os._exit(4)\n"
    with pytest.raises(ActionError, match="ended with exit code 4 and no result"):
        await run(python(script))


async def test_time_limit_kills_the_script(tmp_path: Path) -> None:
    marker = tmp_path / "after"
    script = (
        f"import time\ndef handler(e, c):\n    time.sleep(30)\n    open({str(marker)!r}, 'w')\n"
    )
    action = make_action(ScriptSettings(time_limit=1))
    with pytest.raises(ActionTimeout, match="longer than the 1 s allowed"):
        await action.run(python(script), FakeContext())
    assert not marker.exists()


async def test_cancellation_kills_the_interpreter(tmp_path: Path) -> None:
    pid_file, marker = tmp_path / "pid", tmp_path / "after"
    script = (
        "import os, time\n"
        "def handler(e, c):\n"
        f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(30)\n"
        f"    open({str(marker)!r}, 'w')\n"
    )
    async with anyio.create_task_group() as group:

        async def run_it() -> None:
            await ACTION.run(python(script), FakeContext())
            pytest.fail("the script should still be sleeping")

        group.start_soon(run_it)
        with anyio.fail_after(30):  # the interpreter has started and written its pid
            await _written(pid_file)
        group.cancel_scope.cancel()
    pid = int(pid_file.read_text())
    assert not _alive(pid)
    assert not marker.exists()


async def _written(path: Path) -> None:
    """Poll until ``path`` has content (another process writes it)."""
    written = anyio.Path(path)
    for _ in iter(int, 1):
        if await written.exists() and await written.read_text():
            return
        await anyio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_handler_returning_nothing_has_no_payload_output() -> None:
    result = await run(python("def handler(e, c):\n    print('side effect only')\n"))
    assert result.outputs == {}
    assert result.response == {"Payload": None}


async def test_a_missing_interpreter_is_a_clear_failure() -> None:
    action = make_action(ScriptSettings(python="/nonexistent/python3"))
    with pytest.raises(ActionError, match=r"^cannot start /nonexistent/python3: No such file"):
        await action.run(python("def handler(e, c):\n    return 1\n"), FakeContext())


async def test_powershell_without_pwsh_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    inputs = {"Runtime": "PowerShell 7.0", "Script": "Write-Output 1"}
    with pytest.raises(ActionError) as caught:
        await run(inputs)
    assert caught.value.message == "PowerShell runtime needs pwsh, which is not installed"


async def test_powershell_gets_input_payload_in_the_environment(tmp_path: Path) -> None:
    # A stand-in for pwsh: checks the command line, echoes InputPayload as the result.
    fake = tmp_path / "pwsh"
    fake.write_text(
        "#!/bin/sh\n"
        '[ "$4" = "-File" ] && [ -f "$5" ] && [ -f script.ps1 ] || exit 9\n'
        "echo 'host output'\n"
        'printf \'\\n<<<runbook-result %s>>>\\n{"ok": true, "payload": %s}\\n'
        '<<<end runbook-result %s>>>\\n\' "$RUNBOOK_RESULT_NONCE" "$InputPayload" '
        '"$RUNBOOK_RESULT_NONCE"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    action = make_action(ScriptSettings(pwsh=str(fake)))
    inputs = {"Runtime": "PowerShell 7.4", "Script": "$x = 1", "InputPayload": {"id": "i-1"}}
    result = await action.run(inputs, FakeContext())
    assert isinstance(result, ActionResult)
    assert result.outputs == {"Payload": {"id": "i-1"}}
    assert "host output" in result.logs


def test_static_checks() -> None:
    def messages(inputs: dict[str, Any]) -> list[str]:
        return [f.message for f in SCHEMA.check(inputs, static=True)]

    assert messages({"Runtime": "python3.11", "Script": "x"}) == [
        "a python3.11 script needs a Handler (the function to call)"
    ]
    assert messages({"Runtime": "python3.11", "Handler": "h"}) == [
        "a Python script needs Script or Attachment"
    ]
    assert messages({"Runtime": "python3.11", "Handler": "h", "Attachment": "a.txt"}) == [
        "Attachment must be a .py or .zip file"
    ]
    assert "must be one of" in messages({"Runtime": "python2.7", "Handler": "h", "Script": "x"})[0]
    assert messages({"Runtime": "python3.12", "Handler": "h", "Script": "",
                     "InputPayload": "{{ step.payload }}"}) == []
    assert messages({"Runtime": "PowerShell Core 6.0", "Script": "x"}) == []


def test_split_result_keeps_prints_around_the_marked_block() -> None:
    stdout = 'before\n\n<<<runbook-result n1>>>\n{"ok": true, "payload": 1}\n' \
             "<<<end runbook-result n1>>>\nafter\n"
    assert split_result(stdout, "n1") == ({"ok": True, "payload": 1}, "before\nafter\n")
    assert split_result("no block", "n1") == (None, "no block")
