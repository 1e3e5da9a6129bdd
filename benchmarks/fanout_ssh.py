"""SSH fan-out: ``echo ok`` on N SSH targets (one loopback sshd), C at a time.

A private sshd on 127.0.0.1 (its own host key, checked through a known_hosts file by
every tool) serves N inventory entries. The authorized key carries
``environment="SHLVL=1"`` (with ``PermitUserEnvironment yes``): bash started by sshd then
skips ``~/.bashrc`` (root's runs ``pyenv init``, about 100 ms per command), for every tool
alike. Side by side, in the same run:

* ``runbook run`` (the installed console script, SQLite state): one ``aws:runCommand``
  step, ``AWS-RunShellScript`` over ``Targets: tag:Group=bench``, ``MaxConcurrency`` C
  (with the default ramp-up: 1, 2, 4 ... targets at once);
* the floor: a bare asyncssh script, N connections, C at a time, each ``echo ok``;
* Ansible (``ansible-core`` in /work/venv-ansible): ad-hoc ``shell`` module, ``forks=C``,
  pipelining on, ``ControlMaster=auto``/``ControlPersist`` (one control socket per host):
  a cold run (masters made) and a warm one (masters reused).

Every spawned ``runbook`` and ``ansible`` process gets the environment of ``_cli_env.py``:
``PYTHONDONTWRITEBYTECODE`` removed and ``PYTHONPYCACHEPREFIX`` in the benchmark's
temporary root, so each tool runs from bytecode (as installed software does) that an
untimed first run of it wrote.

    python benchmarks/fanout_ssh.py [--targets 100] [--concurrency 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import getpass
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import asyncssh
import yaml
from _cli_env import cli_env

SSHD = "/usr/sbin/sshd"
ANSIBLE = Path("/work/venv-ansible/bin/ansible")
RUNBOOK = Path(sys.executable).parent / "runbook"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


class Sshd:
    """A private sshd on a loopback port, with a clean environment for the commands."""

    def __init__(self, root: Path, max_sessions: int) -> None:
        self.root = root
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_key, self.user_key = root / "host_key", root / "user_key"
        keygen(self.host_key)
        keygen(self.user_key)
        authorized = root / "authorized_keys"
        authorized.write_text(f'environment="SHLVL=1" {(root / "user_key.pub").read_text()}')
        authorized.chmod(0o600)
        public = (root / "host_key.pub").read_text().split()
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public[0]} {public[1]}\n")
        config = root / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress 127.0.0.1:{self.port}",
                    f"HostKey {self.host_key}",
                    f"AuthorizedKeysFile {authorized}",
                    f"PidFile {root / 'sshd.pid'}",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "PermitUserEnvironment yes",
                    "StrictModes no",
                    f"MaxSessions {max_sessions * 2}",
                    f"MaxStartups {max_sessions * 4}:30:{max_sessions * 8}",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        self.log = (root / "sshd.log").open("wb")
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return
            except OSError as exc:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    log = (root / "sshd.log").read_text()
                    raise SystemExit(f"sshd did not start: {log}") from exc
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


def check_clean_environment(sshd: Sshd) -> None:
    """The authorized key's environment must keep ~/.bashrc out of remote commands."""
    done = subprocess.run(
        [*ssh_command(sshd), "echo $SHLVL"], capture_output=True, text=True, check=True
    )
    if done.stdout.strip() not in ("1", "2"):
        raise SystemExit(f"unexpected remote SHLVL {done.stdout!r}")


def ssh_command(sshd: Sshd) -> list[str]:
    return [
        "ssh",
        "-p",
        str(sshd.port),
        "-i",
        str(sshd.user_key),
        "-o",
        f"UserKnownHostsFile={sshd.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        f"{sshd.user}@127.0.0.1",
    ]


# -- runbook-engine -------------------------------------------------------------------------


def engine_setup(directory: Path, sshd: Sshd, targets: int, concurrency: int) -> list[str]:
    ssh = {
        "host": "127.0.0.1",
        "port": sshd.port,
        "user": sshd.user,
        "identity_file": str(sshd.user_key),
        "known_hosts": str(sshd.known_hosts),
    }
    inventory = {
        "instances": [
            {"id": f"h{n}", "ssh": ssh, "tags": {"Group": "bench"}} for n in range(targets)
        ]
    }
    (directory / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    step = {
        "name": "fan",
        "action": "aws:runCommand",
        "inputs": {
            "DocumentName": "AWS-RunShellScript",
            "Targets": [{"Key": "tag:Group", "Values": ["bench"]}],
            "Parameters": {"commands": ["echo ok"]},
            "MaxConcurrency": str(concurrency),
            "MaxErrors": "0",
        },
    }
    document = directory / "fanout.yaml"
    document.write_text(yaml.safe_dump({"schemaVersion": "0.3", "mainSteps": [step]}))
    return [
        str(RUNBOOK),
        "run",
        str(document),
        "--inventory",
        str(directory / "inventory.yaml"),
        "--output",
        "json",
    ]


def engine_run(
    command: list[str], state: Path, fresh: bool, env: dict[str, str]
) -> tuple[float, float]:
    """One ``runbook run`` on the state file ``state`` (removed first when ``fresh``):
    its wall time and its CPU time (user + system), in seconds."""
    if fresh:
        state.unlink(missing_ok=True)
    before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--state", f"sqlite:///{state}"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - before
    if done.returncode != 0:
        raise SystemExit(f"runbook run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    response = yaml.safe_load(done.stdout)["StepExecutions"][0]
    if response["StepStatus"] != "Success":
        raise SystemExit(f"runbook run step {response['StepStatus']}")
    return elapsed, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- the floor: bare asyncssh ---------------------------------------------------------------


async def bare_asyncssh(sshd: Sshd, targets: int, concurrency: int) -> float:
    limiter = anyio.CapacityLimiter(concurrency)
    outputs: list[str] = []

    async def one() -> None:
        async with (
            limiter,
            asyncssh.connect(
                "127.0.0.1",
                port=sshd.port,
                username=sshd.user,
                client_keys=[str(sshd.user_key)],
                known_hosts=str(sshd.known_hosts),
            ) as connection,
        ):
            result = await connection.run("echo ok", check=True)
            outputs.append(str(result.stdout).strip())

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(targets):
            group.start_soon(one)
    elapsed = time.perf_counter() - started
    if outputs != ["ok"] * targets:
        raise SystemExit("bare asyncssh: not every target said ok")
    return elapsed


# -- Ansible --------------------------------------------------------------------------------


def ansible_setup(directory: Path, sshd: Sshd, targets: int) -> tuple[list[str], dict[str, str]]:
    controls = directory / "cp"
    controls.mkdir(exist_ok=True)
    lines = ["[bench]"]
    for n in range(targets):
        lines.append(
            f"h{n} ansible_host=127.0.0.1 ansible_port={sshd.port} ansible_user={sshd.user}"
            f" ansible_control_path={controls}/h{n}"
        )
    inventory = directory / "hosts.ini"
    inventory.write_text("\n".join(lines) + "\n")
    env = {
        **cli_env(directory),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=30s"
        f" -o UserKnownHostsFile={sshd.known_hosts} -o StrictHostKeyChecking=yes",
        "ANSIBLE_PRIVATE_KEY_FILE": str(sshd.user_key),
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
        "ANSIBLE_LOCAL_TEMP": str(directory / "ansible-tmp"),
        "ANSIBLE_STDOUT_CALLBACK": "minimal",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
    }
    command = [str(ANSIBLE), "bench", "-i", str(inventory), "-m", "shell", "-a", "echo ok"]
    return [*command, "--forks"], env


def ansible_run(command: list[str], env: dict[str, str], concurrency: int, targets: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [*command, str(concurrency)], capture_output=True, text=True, env=env, check=False
    )
    elapsed = time.perf_counter() - started
    changed = done.stdout.count("CHANGED")
    if done.returncode != 0 or changed != targets:
        raise SystemExit(
            f"ansible failed ({done.returncode}, {changed} ok):\n{done.stdout[-2000:]}"
        )
    return elapsed


def close_masters(directory: Path) -> None:
    """End Ansible's ControlPersist masters (they would linger for ControlPersist)."""
    for socket_path in (directory / "cp").glob("h*"):
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "x"],
            capture_output=True,
            check=False,
        )


# -- main -------------------------------------------------------------------------------------


def summary(name: str, times: list[float], floor: float) -> str:
    best, median = min(times), statistics.median(times)
    return f"{name:38s} best {best:7.3f} s  median {median:7.3f} s  {best / floor:6.2f}x floor"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-ansible", action="store_true")
    parser.add_argument(
        "--fresh-state",
        action="store_true",
        help="a new state file for every engine run (its schema is created inside the timed"
        " run), instead of one made by an untimed first run, as every run but the first finds it",
    )
    parser.add_argument(
        "--baseline-source",
        metavar="DIR",
        help="also run the engine from this source tree (e.g. `git archive` of an older"
        " commit; first on PYTHONPATH), interleaved with the current one: before/after"
        " figures on one machine state",
    )
    args = parser.parse_args()
    if not ANSIBLE.exists() and not args.no_ansible:
        raise SystemExit(f"{ANSIBLE} is missing: python3 -m venv /work/venv-ansible && "
                         "/work/venv-ansible/bin/pip install ansible-core")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="fanout-ssh-"))
    root.chmod(0o700)
    sshd = Sshd(root, args.concurrency)
    bare, cold, warm = [], [], []
    engine: list[tuple[float, float]] = []
    baseline: list[tuple[float, float]] = []
    load_before = os.getloadavg()[0]
    try:
        check_clean_environment(sshd)
        command = engine_setup(root, sshd, args.targets, args.concurrency)
        ansible = ansible_setup(root, sshd, args.targets) if not args.no_ansible else None
        state, baseline_state = root / "state.db", root / "baseline-state.db"
        env = cli_env(root)
        baseline_env = {**env, "PYTHONPATH": args.baseline_source or ""}
        # Untimed first runs write the bytecode and (unless --fresh-state) the state files.
        engine_run(command, state, True, env)
        if args.baseline_source:
            engine_run(command, baseline_state, True, baseline_env)
        if ansible is not None:
            ansible_run(*ansible, args.concurrency, args.targets)
        for _ in range(args.repeat):
            bare.append(anyio.run(bare_asyncssh, sshd, args.targets, args.concurrency))
            engine.append(engine_run(command, state, args.fresh_state, env))
            if args.baseline_source:
                baseline.append(engine_run(command, baseline_state, args.fresh_state, baseline_env))
            if ansible is not None:
                close_masters(root)
                cold.append(ansible_run(*ansible, args.concurrency, args.targets))
                warm.append(ansible_run(*ansible, args.concurrency, args.targets))
    finally:
        close_masters(root)
        sshd.stop()
        shutil.rmtree(root, ignore_errors=True)
    floor = min(bare)
    print(f"echo ok on {args.targets} SSH targets, concurrency {args.concurrency}, "
          f"{'fresh' if args.fresh_state else 'existing'} state file, "
          f"{args.repeat} runs (load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after)")  # fmt: skip
    print(summary("runbook run (aws:runCommand)", [w for w, _ in engine], floor))
    if baseline:
        print(summary("  the same, --baseline-source", [w for w, _ in baseline], floor))
    for name, runs in (("runbook run", engine), ("--baseline-source", baseline)):
        if runs:
            cpu = [c for _, c in runs]
            print(f"  CPU time of {name:26s} best {min(cpu):7.3f} s  median "
                  f"{statistics.median(cpu):7.3f} s  (user + system)")  # fmt: skip
    print(summary("floor: bare asyncssh", bare, floor))
    if cold:
        print(summary("ansible shell, cold (masters made)", cold, floor))
        print(summary("ansible shell, warm (ControlPersist)", warm, floor))
        best = min(w for w, _ in engine)
        print(f"ansible cold / runbook run: {min(cold) / best:.1f}x; "
              f"warm / runbook run: {min(warm) / best:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
