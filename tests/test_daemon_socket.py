"""The daemon's listening socket: connections accepted on it must have Nagle off.

asyncio sets TCP_NODELAY only on accepted sockets whose protocol is TCP. A listening
socket made without saying so (protocol 0) kept Nagle on, and each keep-alive request
of a boto3 client waited about 40 ms for the delayed ACK of the response's first part
(benchmarks/daemon_api.py)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from runbook_engine.daemon.server import bind

pytestmark = pytest.mark.anyio


async def test_connections_accepted_by_the_daemons_socket_have_nagle_off() -> None:
    listener = bind("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP
    accepted: asyncio.Queue[int] = asyncio.Queue()

    class Record(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            raw = transport.get_extra_info("socket")
            accepted.put_nowait(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Record, sock=listener)
    try:
        port = listener.getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        nodelay = await asyncio.wait_for(accepted.get(), 10)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert nodelay != 0
