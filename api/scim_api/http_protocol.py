"""uvicorn's httptools protocol, sending each answer's head and body in one socket write.

uvicorn writes the status line and headers as soon as the app sends ``http.response.start``,
then the body in a second ``transport.write``: two ``send`` system calls and two TCP segments
per answer (about 30 µs more system time per small answer here, docs/benchmarks.md "Reads").
Here the head is formatted by uvicorn as before (same checks, same bytes) but held until the
first body message, and both go out in one write. Nothing else changes: streamed bodies send
their later chunks as uvicorn does, and a close that uvicorn asks for happens after the write.
An app that fails between the head and the body gets its connection closed, as before, but
without the head having been sent."""

from __future__ import annotations

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _Collector:
    """Stands in for the transport while uvicorn formats one message: keeps the bytes it
    writes and whether it asked to close, for the real transport afterwards."""

    __slots__ = ("chunks", "close_requested")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.close_requested = False

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def close(self) -> None:
        self.close_requested = True


class OneWriteCycle(RequestResponseCycle):
    """A request/response cycle whose response head waits for the first body message."""

    _head: bytes | None = None

    async def send(self, message: ASGISendEvent) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            self._head = b"".join((await self._formatted(message)).chunks)
            return
        head, self._head = self._head, None
        if head is None:  # a later chunk of a streamed body, or a message uvicorn refuses
            await super().send(message)
            return
        written = await self._formatted(message)
        self.transport.write(b"".join([head, *written.chunks]))
        if written.close_requested:
            self.transport.close()

    async def _formatted(self, message: ASGISendEvent) -> _Collector:
        """uvicorn's own ``send`` of ``message``, its writes and close kept, not done."""
        real = self.transport
        collector = _Collector()
        self.transport = collector  # type: ignore[assignment]
        try:
            await super().send(message)
        finally:
            self.transport = real
        return collector


class OneWriteProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose cycles are ``OneWriteCycle``s (pass as ``uvicorn.run(http=…)``).

    uvicorn builds each cycle inside ``on_headers_complete`` and only schedules its task
    there, so the cycle is re-classed before any of its code runs."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = OneWriteCycle
