"""``OneWriteProtocol``: uvicorn's httptools protocol with each answer's head and body in one
transport write. The bytes on the wire must be exactly uvicorn's (checked against the stock
``HttpToolsProtocol`` on the same requests); only the number of writes changes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from scim_api.http_protocol import OneWriteProtocol

BODY = b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1}'


class FakeTransport:
    """What a protocol writes, and when it closes, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        assert not self.closing, "write after close"
        self.events.append(("write", bytes(data)))

    def close(self) -> None:
        self.closing = True
        self.events.append(("close", b""))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    @property
    def writes(self) -> list[bytes]:
        return [data for kind, data in self.events if kind == "write"]


async def plain(scope: Any, receive: Any, send: Any) -> None:
    """A JSON answer with a Content-Length, as every SCIM answer is sent."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/scim+json"), (b"content-length", str(len(BODY)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": BODY})


async def empty(scope: Any, receive: Any, send: Any) -> None:
    """A 204 (a PATCH without a representation), head and an empty body."""
    await send({"type": "http.response.start", "status": 204, "headers": [(b"etag", b'W/"1"')]})
    await send({"type": "http.response.body", "body": b""})


async def streamed(scope: Any, receive: Any, send: Any) -> None:
    """A body in three chunks, no Content-Length: chunked encoding."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for part in (b"one", b"two", b"three"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def reads_body(scope: Any, receive: Any, send: Any) -> None:
    """Reads the request body before answering (a POST), echoing its length."""
    received = b""
    while True:
        message = await receive()
        received += message.get("body", b"")
        if not message.get("more_body"):
            break
    text = str(len(received)).encode()
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", str(len(text)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": text})


GET = b"GET /scim/v2/Groups?filter=x HTTP/1.1\r\nHost: t\r\n\r\n"


async def _serve(protocol_class: type[HttpToolsProtocol], app: Any, *requests: bytes) -> FakeTransport:
    config = Config(app=app, http=protocol_class, date_header=False, server_header=False, log_config=None)
    config.load()
    state = ServerState()
    transport = FakeTransport()
    protocol = protocol_class(config, state, {}, asyncio.get_running_loop())
    protocol.connection_made(transport)  # type: ignore[arg-type]
    for request in requests:
        protocol.data_received(request)
    for _ in range(100):  # let the request tasks run to their end
        await asyncio.sleep(0)
        if not state.tasks and (protocol.cycle is None or protocol.cycle.response_complete):
            break
    return transport


@pytest.mark.parametrize(
    ("app", "requests"),
    [
        (plain, [GET]),
        (plain, [GET, GET]),  # keep-alive: two requests on one connection
        (plain, [GET + GET]),  # pipelined in one packet
        (empty, [b"PATCH /scim/v2/Groups/g HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"]),
        (plain, [b"HEAD /scim/v2/Groups HTTP/1.1\r\nHost: t\r\n\r\n"]),
        (plain, [b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"]),
        (plain, [b"GET / HTTP/1.0\r\nHost: t\r\n\r\n"]),
        (streamed, [GET]),
        (reads_body, [b"POST /scim/v2/Groups HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"]),
    ],
    ids=[
        "json",
        "keep-alive",
        "pipelined",
        "204",
        "head",
        "connection-close",
        "http-1.0",
        "streamed",
        "post",
    ],
)
async def test_same_bytes_as_uvicorn(app: Any, requests: list[bytes]) -> None:
    ours = await _serve(OneWriteProtocol, app, *requests)
    stock = await _serve(HttpToolsProtocol, app, *requests)
    assert b"".join(ours.writes) == b"".join(stock.writes)
    assert b"".join(ours.writes).count(b"HTTP/1.1 ") == len(b"".join(requests).split(b"HTTP/1.")) - 1
    assert [kind for kind, _ in ours.events if kind == "close"] == [
        k for k, _ in stock.events if k == "close"
    ]
    if ours.closing:  # the close uvicorn asks for comes after the answer is written
        assert ours.events[-1][0] == "close"


@pytest.mark.parametrize("app", [plain, empty, reads_body])
async def test_one_write_per_answer(app: Any) -> None:
    request = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
    ours = await _serve(OneWriteProtocol, app, request, request)
    stock = await _serve(HttpToolsProtocol, app, request, request)
    assert len(stock.writes) == 4  # uvicorn: head, then body, per answer
    assert len(ours.writes) == 2
    assert all(w.startswith(b"HTTP/1.1 ") for w in ours.writes)


async def test_streamed_body_head_goes_with_first_chunk() -> None:
    ours = await _serve(OneWriteProtocol, streamed, GET)
    assert ours.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert ours.writes[0].endswith(b"\r\n\r\n3\r\none\r\n")
    assert ours.writes[1:] == [b"3\r\ntwo\r\n", b"5\r\nthree\r\n", b"0\r\n\r\n"]
