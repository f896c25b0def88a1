"""A bare TWS-protocol client for byte-level tests: sends fields, returns reply frames as sent."""

from __future__ import annotations

import asyncio
import struct

from tests.fakegw.wire import API_GREETING, Field, decode_frame, encode_frame


class RawClient:
    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self, host: str, port: int, versions: str = "v157..178") -> bytes:
        """Open the socket and greet; returns the handshake reply frame."""
        self.reader, self.writer = await asyncio.open_connection(host, port)
        body = versions.encode()
        self.writer.write(API_GREETING + struct.pack(">I", len(body)) + body)
        return await self.read_raw()

    async def start_api(self, client_id: int, frames: int) -> list[bytes]:
        self.send(71, 2, client_id, "")
        return [await self.read_raw() for _ in range(frames)]

    def send(self, *fields: Field) -> None:
        assert self.writer is not None, "connect first"
        self.writer.write(encode_frame(list(fields)))

    async def read_raw(self, timeout: float = 2.0) -> bytes:
        assert self.reader is not None, "connect first"
        header = await asyncio.wait_for(self.reader.readexactly(4), timeout)
        (size,) = struct.unpack(">I", header)
        return header + await asyncio.wait_for(self.reader.readexactly(size), timeout)

    async def read(self, timeout: float = 2.0) -> list[str]:
        return decode_frame(await self.read_raw(timeout))

    async def read_until(self, msg_id: str, timeout: float = 2.0) -> list[bytes]:
        """Frames up to and including the first whose message id is `msg_id`."""
        frames = []
        while True:
            frame = await self.read_raw(timeout)
            frames.append(frame)
            if decode_frame(frame)[0] == msg_id:
                return frames

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            self.writer = self.reader = None
