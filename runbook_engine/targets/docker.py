"""Docker containers through the Docker SDK: a running container is an instance.

Commands are ``docker exec`` sessions whose output is streamed (in a worker thread, since
the SDK blocks) into lists the caller owns, so output produced before a timeout or a
failure is kept. Files go in with the archive API. Exit code 194 restarts the container.
A container that is stopped or removed, before or during a command, is a
:class:`TargetUnavailable` naming the instance and the container.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anyio
import docker
import docker.errors
from docker.utils import kwargs_from_env
from docker.utils.socket import STDERR, frames_iter

from runbook_engine.targets import TargetUnavailable
from runbook_engine.targets.remote import RemoteShellTarget

if TYPE_CHECKING:
    from runbook_engine.inventory import DockerSpec

THREADS_PER_ENGINE = 64  # exec streams block a thread each


class DockerClients:
    """One API client (and thread budget) per Docker engine URL."""

    def __init__(self) -> None:
        self._clients: dict[str, tuple[docker.APIClient, anyio.CapacityLimiter]] = {}
        self._lock = threading.Lock()

    def get(self, url: str | None) -> tuple[docker.APIClient, anyio.CapacityLimiter]:
        key = url or ""
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                options: dict[str, Any] = {"base_url": url} if url else kwargs_from_env()
                found = (
                    docker.APIClient(version="auto", **options),
                    anyio.CapacityLimiter(THREADS_PER_ENGINE),
                )
                self._clients[key] = found
            return found

    async def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client, _ in clients:
            client.close()


def _stream_exec(
    client: docker.APIClient, exec_id: str, out: list[bytes], err: list[bytes]
) -> None:
    """Start an exec and copy its multiplexed output into ``out``/``err`` as it comes.

    ``exec_start(stream=True)`` of the SDK never closes its HTTP response, which leaks a
    socket per command; this is the same request with the response and socket closed.
    """
    response = client._post_json(
        client._url("/exec/{0}/start", exec_id),
        data={"Tty": False, "Detach": False},
        stream=True,
    )
    client._raise_for_status(response)
    sock = client._get_raw_response_socket(response)
    try:
        for stream_id, data in frames_iter(sock, tty=False):
            (err if stream_id == STDERR else out).append(data)
    finally:
        response.close()
        raw = getattr(sock, "_sock", None)
        if raw is not None:
            raw.close()


class DockerTarget(RemoteShellTarget):
    def __init__(
        self,
        instance_id: str,
        spec: DockerSpec,
        clients: DockerClients,
        *,
        platform: str | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.spec = spec
        self.platform = platform or "Linux"
        self._clients = clients

    def _unavailable(self, exc: BaseException, doing: str) -> TargetUnavailable:
        name = self.spec.container
        if isinstance(exc, docker.errors.NotFound):
            reason = f"container {name} is gone"
        elif isinstance(exc, docker.errors.APIError) and exc.status_code == 409:
            reason = f"container {name} is not running"
        elif isinstance(exc, docker.errors.DockerException | OSError):
            reason = f"Docker engine {self.spec.url or '(default)'}: {exc}"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        return TargetUnavailable(self.instance_id, f"{reason} ({doing})")

    async def _call(self, doing: str, function: Any, *args: Any) -> Any:
        client, limiter = self._clients.get(self.spec.url)
        try:
            return await anyio.to_thread.run_sync(
                function, client, *args, abandon_on_cancel=True, limiter=limiter
            )
        except (docker.errors.DockerException, OSError) as exc:
            raise self._unavailable(exc, doing) from exc

    async def _exec(
        self, command: str, stdin: bytes | None, out: list[bytes], err: list[bytes]
    ) -> int:
        assert stdin is None, "docker exec input goes through files"
        container = self.spec.container

        def stream(client: docker.APIClient) -> int:
            exec_id = client.exec_create(container, ["sh", "-c", command])["Id"]
            _stream_exec(client, exec_id, out, err)
            code = client.exec_inspect(exec_id).get("ExitCode")
            if code is None:  # the stream ended but the process did not: the container died
                raise docker.errors.NotFound(f"container {container} stopped during the command")
            return int(code)

        result: int = await self._call("running a command", stream)
        if result != 0 and await self._went_down(killed=result in (137, 143)):
            raise TargetUnavailable(
                self.instance_id, f"container {container} stopped during the command"
            )
        return result

    async def _went_down(self, *, killed: bool) -> bool:
        """Did the command end because its container stopped? A container being killed
        can still look alive for a moment after its processes died, so a command killed
        by a signal looks again for up to a second."""
        for _ in range(10 if killed else 1):
            if not await self._running():
                return True
            if not killed:
                return False
            await anyio.sleep(0.1)
        return False

    async def _running(self) -> bool:
        container = self.spec.container

        def running(client: docker.APIClient) -> bool:
            try:
                state = client.inspect_container(container)["State"]
            except docker.errors.NotFound:
                return False
            return bool(state["Running"]) and state.get("Status") == "running"

        result: bool = await self._call("inspecting", running)
        return result

    async def _unpack(self, directory: str, archive: bytes) -> None:
        container = self.spec.container

        def put(client: docker.APIClient) -> bool:
            return bool(client.put_archive(container, directory, archive))

        await self._call(f"writing files under {directory}", put)

    async def reboot(self, time_limit: float) -> None:
        container = self.spec.container

        def restart(client: docker.APIClient) -> None:
            client.restart(container, timeout=min(int(time_limit), 10))

        with anyio.move_on_after(time_limit):
            await self._call("restarting", restart)
            while not await self._running():  # noqa: ASYNC110 -- polls another process
                await anyio.sleep(0.2)
            return
        raise TargetUnavailable(
            self.instance_id, f"container {container} did not run again within {time_limit:g} s"
        )

    async def close(self) -> None:
        return None  # clients belong to the pool
