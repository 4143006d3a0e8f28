"""A replica set whose primary the test moves, in front of one SecantusDB
(which cannot step down): two members, each a proxy of the wire protocol
that passes commands through, answers `hello` as a member of `rs0` (which
of the two is primary is the test's to switch), and, while it is not the
primary, refuses every command but the handshake and authentication with
`10107 NotWritablePrimary`, as a stepped-down mongod does. The members share
one server, as a set's members share their data once replicated. The same
stand-in as the edge's Rust test (edge/src/store/mongo/replica_set_tests.rs),
here in front of the edge under `wrangler dev`."""

from __future__ import annotations

import asyncio
import struct
import threading
from typing import Any

import bson

OP_REPLY, OP_MSG = 1, 2013
# Commands a member that is not primary still serves.
ANY_MEMBER = {"isMaster", "ismaster", "hello", "saslStart", "saslContinue", "ping"}
REFUSAL = {"ok": 0.0, "code": 10107, "codeName": "NotWritablePrimary", "errmsg": "not primary"}


def _op_msg(request_id: bytes, response_to: bytes, body: dict[str, Any]) -> bytes:
    payload = b"\0\0\0\0" + b"\0" + bson.encode(body)
    return struct.pack("<i", 16 + len(payload)) + request_id + response_to + struct.pack("<i", OP_MSG) + payload


def _op_msg_body(frame: bytes) -> dict[str, Any] | None:
    """The body section (kind 0) of an OP_MSG, if it leads."""
    if frame[20] != 0:
        return None
    (n,) = struct.unpack_from("<i", frame, 21)
    return bson.decode(frame[21 : 21 + n])


class ReplicaSet:
    """Two members on loopback ports in front of the server on `server_port`, member 0 primary."""

    def __init__(self, server_port: int) -> None:
        self.server_port = server_port
        self.primary = 0
        # Times a member that is not the primary turned the edge away: a
        # command refused, or a handshake answered as a secondary (a new
        # connection finds the move before its first command does).
        self.turned_away = 0
        self.ports: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.wait(10)

    def address(self, i: int) -> str:
        return f"127.0.0.1:{self.ports[i]}"

    def close(self) -> None:
        """Stops listening, drops the members' connections and closes the loop."""

        async def shut() -> None:
            for server in self._servers:
                server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def listen() -> None:
            for me in (0, 1):
                server = await asyncio.start_server(lambda r, w, me=me: self._member(me, r, w), "127.0.0.1", 0)
                self._servers.append(server)
                self.ports.append(server.sockets[0].getsockname()[1])

        self._loop.run_until_complete(listen())
        started.set()
        self._loop.run_forever()

    def _hello(self, me: int, reply: dict[str, Any]) -> dict[str, Any]:
        writable = me == self.primary
        if not writable:
            self.turned_away += 1
        return {**reply, "setName": "rs0", "hosts": [self.address(0), self.address(1)],
                "primary": self.address(self.primary), "me": self.address(me), "isWritablePrimary": writable,
                "ismaster": writable, "secondary": not writable}  # fmt: skip

    def _as_member(self, me: int, reply: bytes) -> bytes:
        (opcode,) = struct.unpack_from("<i", reply, 12)
        if opcode == OP_MSG:
            body = _op_msg_body(reply)
            if body is None or "maxWireVersion" not in body:
                return reply
            return _op_msg(reply[4:8], reply[8:12], self._hello(me, body))
        if opcode == OP_REPLY:
            doc = bson.encode(self._hello(me, bson.decode(reply[36:])))
            return struct.pack("<i", 36 + len(doc)) + reply[4:36] + doc
        return reply

    async def _member(self, me: int, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.server_port)
        # Requests to refuse: the server gets a `ping` in their place, so the
        # answers keep their order, and its answer becomes the refusal.
        refusing: set[bytes] = set()

        async def answers() -> None:
            while frame := await _frame(server_in):
                to = frame[8:12]
                if to in refusing:
                    refusing.discard(to)
                    frame = _op_msg(frame[4:8], to, REFUSAL)
                else:
                    frame = self._as_member(me, frame)
                client_out.write(frame)
                await client_out.drain()
            client_out.close()

        replies = asyncio.ensure_future(answers())
        try:
            while request := await _frame(client_in):
                (opcode,) = struct.unpack_from("<i", request, 12)
                if opcode == OP_MSG and self.primary != me:
                    body = _op_msg_body(request) or {}
                    if next(iter(body), "") not in ANY_MEMBER:
                        self.turned_away += 1
                        refusing.add(request[4:8])
                        request = _op_msg(request[4:8], b"\0\0\0\0", {"ping": 1, "$db": "admin"})
                server_out.write(request)
                await server_out.drain()
        finally:
            server_out.close()
            replies.cancel()
            await asyncio.gather(replies, return_exceptions=True)
            client_out.close()


async def _frame(stream: asyncio.StreamReader) -> bytes | None:
    try:
        head = await stream.readexactly(4)
        (n,) = struct.unpack("<i", head)
        return head + await stream.readexactly(n - 4)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
