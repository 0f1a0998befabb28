"""The websocket endpoint: subscribe, then hello + snapshot (or resumed deltas), then live deltas.

The Origin header is checked against the server's own origin plus ``Settings.allowed_origins`` before
the upgrade is accepted (browsers always send it; a missing Origin means a non-browser client, which
authentication will cover). Sending and receiving run in one TaskGroup per connection; the sender drains
the client's hub queue and sends a heartbeat after a second of silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.websockets import WebSocketState

from app.api.deps import CurrentUser, Svc
from app.hub import ClientChannel, Subscription
from app.wire import CLIENT_MESSAGE, Error, Subscribe

log = logging.getLogger(__name__)
router = APIRouter()

HEARTBEAT_S = 1.0
SUBSCRIBE_TIMEOUT_S = 10.0


def origin_allowed(origin: str | None, host: str | None, scheme: str, allowed: list[str]) -> bool:
    """Same-origin, or listed in ``allowed``; a missing Origin (non-browser client) is accepted."""
    if origin is None:
        return True
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    expected_scheme = "https" if scheme in ("wss", "https") else "http"
    return parts.scheme == expected_scheme and host is not None and parts.netloc == host


def _subscription(msg: Subscribe, known: Callable[[str], bool]) -> tuple[Subscription, list[str]]:
    if msg.bays is None:
        return Subscription(None, msg.waves), []
    unknown = [b for b in msg.bays if not known(b)]
    return Subscription(frozenset(b for b in msg.bays if known(b)), msg.waves), unknown


@router.websocket("/ws")
async def websocket(ws: WebSocket, user: CurrentUser, svc: Svc) -> None:
    """Live stream for bedside, station and (later) review screens."""
    origin = ws.headers.get("origin")
    if not origin_allowed(origin, ws.headers.get("host"), ws.url.scheme, svc.settings.allowed_origins):
        log.warning("websocket refused: origin %r not allowed", origin)
        await ws.close(code=1008, reason="origin not allowed")
        return
    await ws.accept()
    hub = svc.hub
    known = hub.live.has_bay
    try:
        first = await asyncio.wait_for(_receive_text(ws), SUBSCRIBE_TIMEOUT_S)
    except (TimeoutError, _Closed):
        with contextlib.suppress(Exception):
            await ws.close(code=1008, reason="expected a subscribe message")
        return
    try:
        sub_msg = CLIENT_MESSAGE.validate_json(first)
    except ValidationError as e:
        await ws.send_text(
            Error(seq=hub.seq, t=time.time(), code="bad_message", message=str(e), fatal=True).model_dump_json()
        )
        await ws.close(code=1003, reason="bad subscribe message")
        return
    sub, unknown = _subscription(sub_msg, known)
    ch = hub.attach(sub, sub_msg.resume)
    if unknown:
        ch.push_text(
            Error(seq=hub.seq, t=time.time(), code="unknown_bay", message=f"unknown bays: {unknown}").model_dump_json()
        )
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_send_loop(ws, ch, svc), name=f"ws-send:{ch.name}")
            tg.create_task(_receive_loop(ws, ch, svc, known), name=f"ws-recv:{ch.name}")
    except* (WebSocketDisconnect, _Closed):
        pass
    finally:
        hub.detach(ch)
        if ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await ws.close()


class _Closed(Exception):
    """The peer went away."""


async def _receive_text(ws: WebSocket) -> str:
    """The next client message as text (binary frames are decoded leniently and then fail validation)."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise _Closed()
    text = message.get("text")
    if text is None:
        text = (message.get("bytes") or b"").decode("utf-8", "replace")
    return str(text)


async def _send_loop(ws: WebSocket, ch: ClientChannel, svc: Svc) -> None:
    while True:
        text = await ch.get(timeout=HEARTBEAT_S)
        if text is None:
            text = svc.hub.heartbeat()
        try:
            await ws.send_text(text)
        except (RuntimeError, OSError) as e:  # closed underneath us
            raise _Closed() from e


async def _receive_loop(ws: WebSocket, ch: ClientChannel, svc: Svc, known: Callable[[str], bool]) -> None:
    while True:
        raw = await _receive_text(ws)
        try:
            msg = CLIENT_MESSAGE.validate_json(raw)
        except ValidationError as e:
            ch.push_text(Error(seq=svc.hub.seq, t=time.time(), code="bad_message", message=str(e)).model_dump_json())
            continue
        sub, unknown = _subscription(msg, known)
        svc.hub.resubscribe(ch, sub)
        if unknown:
            ch.push_text(
                Error(
                    seq=svc.hub.seq, t=time.time(), code="unknown_bay", message=f"unknown bays: {unknown}"
                ).model_dump_json()
            )
