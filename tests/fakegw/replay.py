"""A replay peer: a server that answers each request with a recorded TWS session's raw frames.

It lets a test run the same `ib_async` client against real TWS bytes and against the fake,
and compare what the client decoded. Request ids inside replies are rewritten to the ids the
client used, so the client's futures resolve; every other byte is as recorded. Frames that
other subscriptions pushed while a reply was being recorded (account time, account-multi
updates inside the account-summary reply) are left out: when they arrive is timing, not protocol.
"""

from __future__ import annotations

import asyncio

from tests.fakegw.capture import Capture
from tests.fakegw.wire import decode_frame, encode_frame, read_frame, read_greeting

# Request msg id -> where its request id sits; replies of these types carry it at field 2.
REQUEST_ID_AT = {7: 2, 62: 2, 76: 2}
REPLIES_WITH_REQUEST_ID = frozenset({"55", "63", "64", "73", "74"})
OWN_REPLIES = {62: frozenset({"63", "64"})}


class ReplayPeer:
    def __init__(self, capture: Capture, host: str = "127.0.0.1", port: int = 0):
        self.capture, self.host, self._port = capture, host, port
        self.unanswered: list[list[str]] = []
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:  # each ends at EOF once its socket is closed
            await asyncio.wait(list(self._tasks), timeout=2)
        for task in list(self._tasks):
            task.cancel()
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await read_greeting(reader)
            writer.write(b"".join(self.capture.frames["API_"]))
            while True:
                fields = await read_frame(reader)
                writer.write(b"".join(self._replies(fields)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)

    def _replies(self, request: list[str]) -> list[bytes]:
        key = f"{request[0]}_{request[1] if len(request) > 1 else ''}"
        frames = self.capture.frames.get(key)
        if frames is None:
            self.unanswered.append(request)
            return []
        msg_id = int(request[0])
        at, own = REQUEST_ID_AT.get(msg_id), OWN_REPLIES.get(msg_id)
        if at is None and own is None:
            return frames
        out = []
        for frame in frames:
            fields = decode_frame(frame)
            if own is not None and fields[0] not in own:
                continue
            if at is not None and fields[0] in REPLIES_WITH_REQUEST_ID:
                fields[2] = request[at]
                frame = encode_frame(list(fields))
            out.append(frame)
        return out
