"""A small keep-alive HTTP/1.1 client for loopback calls from the router to model servers.

The router talks only to its own model servers (uvicorn, which always answers with a
Content-Length or chunked body), so a pooled asyncio-streams client is enough and keeps the
extra hop well under a millisecond. A request that fails on a reused idle connection before
any answer byte arrived is retried once on a fresh connection (the server may have closed
it); any other failure raises :class:`UpstreamError`.
"""

from __future__ import annotations

import asyncio
from collections import deque

LOOPBACK = "127.0.0.1"


class UpstreamError(ConnectionError):
    """The model server could not be reached or answered garbage."""


class UpstreamPool:
    """Idle keep-alive connections to one model server."""

    def __init__(self, port: int, *, max_idle: int = 256, timeout: float = 60.0) -> None:
        self.port = port
        self.timeout = timeout
        self.max_idle = max_idle
        self._idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()
        self.closed = False

    async def request(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """POST ``body`` to ``path``; returns (status, lower-cased headers, body)."""
        head = [f"POST {path} HTTP/1.1", f"host: {LOOPBACK}:{self.port}", f"content-length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        while self._idle:
            conn = self._idle.pop()
            try:
                return await asyncio.wait_for(self._roundtrip(conn, payload), self.timeout)
            except _StaleConnection:
                continue
        try:
            conn = await asyncio.open_connection(LOOPBACK, self.port)
        except OSError as exc:
            raise UpstreamError(f"cannot connect to model server on port {self.port}: {exc}") from exc
        try:
            return await asyncio.wait_for(self._roundtrip(conn, payload), self.timeout)
        except _StaleConnection as exc:
            raise UpstreamError(f"model server on port {self.port} closed the connection") from exc
        except TimeoutError as exc:
            raise UpstreamError(f"model server on port {self.port} did not answer within {self.timeout}s") from exc

    async def _roundtrip(
        self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], payload: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        reader, writer = conn
        try:
            writer.write(payload)
            status_line = await reader.readline()
        except (ConnectionError, OSError) as exc:
            writer.close()
            raise _StaleConnection from exc
        if not status_line:
            writer.close()
            raise _StaleConnection
        try:
            status = int(status_line.split(b" ", 2)[1])
            headers: dict[str, str] = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                body = await _read_chunked(reader)
            else:
                body = await reader.read()
                headers["connection"] = "close"
        except (ConnectionError, OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            writer.close()
            raise UpstreamError(f"bad answer from model server on port {self.port}: {exc!r}") from exc
        if headers.get("connection", "").lower() == "close" or self.closed or len(self._idle) >= self.max_idle:
            writer.close()
        else:
            self._idle.append(conn)
        return status, headers, body

    def close(self) -> None:
        """Close idle connections; in-flight requests finish and then close theirs."""
        self.closed = True
        while self._idle:
            self._idle.pop()[1].close()


class _StaleConnection(Exception):
    pass


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while True:
        size = int((await reader.readline()).split(b";", 1)[0].strip(), 16)
        if size == 0:
            await reader.readline()
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readline()
