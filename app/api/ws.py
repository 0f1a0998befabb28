"""The websocket endpoint: subscribe, then hello + snapshot (or resumed deltas), then live deltas.

The Origin header is checked against the server's own origin plus ``Settings.allowed_origins`` before
the upgrade is accepted (browsers always send it; a missing Origin means a non-browser client, which
authentication will cover). Sending and receiving run in one TaskGroup per connection; the sender drains
the client's hub queue and sends a heartbeat after a second of silence. A client that subscribed with
``batch`` gets what is queued (up to ``BATCH_MAX`` messages) as one JSON array per frame: the per-frame cost
of the ASGI server and the websocket framing is paid once per send instead of once per message.
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
from app.hub import ClientChannel, Hub, Subscription
from app.wire import CLIENT_MESSAGE, Error, Subscribe

log = logging.getLogger(__name__)
router = APIRouter()

HEARTBEAT_S = 1.0
SUBSCRIBE_TIMEOUT_S = 10.0
#: Most messages in one batched frame (a frame of full-rate waves of 16 bays stays well under a megabyte).
BATCH_MAX = 128


class _Link:
    """Per-connection framing option, changed by each subscribe."""

    __slots__ = ("batch",)

    def __init__(self, batch: bool) -> None:
        self.batch = batch


def batch_frame(texts: list[str]) -> str:
    """Encoded messages as one JSON array, one message per line (compact JSON has no raw newline, so a lean
    client may split the frame on newlines instead of parsing it whole)."""
    return "[" + ",\n".join(texts) + "]"


def origin_allowed(origin: str | None, host: str | None, scheme: str, allowed: list[str]) -> bool:
    """Same-origin, or listed in ``allowed``; a missing Origin (non-browser client) is accepted."""
    if origin is None:
        return True
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    expected_scheme = "https" if scheme in ("wss", "https") else "http"
    return parts.scheme == expected_scheme and host is not None and parts.netloc == host


def _subscription(
    msg: Subscribe, known: Callable[[str], bool], scope: frozenset[str] | None = None
) -> tuple[Subscription, list[str]]:
    """What a subscribe asks for, within the user's bays (``scope``; None: every bay); bays it names that are
    unknown or outside the scope are left out and returned."""
    if msg.bays is None:
        return Subscription(scope, msg.waves), []
    refused = [b for b in msg.bays if not known(b) or (scope is not None and b not in scope)]
    return Subscription(frozenset(b for b in msg.bays if b not in refused), msg.waves), refused


@router.websocket("/ws")
async def websocket(ws: WebSocket, user: CurrentUser, svc: Svc) -> None:
    """Live stream for bedside and station screens."""
    if await _origin_refused(ws, svc):
        return
    await ws.accept()
    await _serve(ws, svc.hub, scope=user.bays)  # a nurse gets her bays only, whatever she asks for


@router.websocket("/ws/replay/{replay_id}")
async def replay_websocket(ws: WebSocket, replay_id: str, user: CurrentUser, svc: Svc) -> None:
    """A replay's stream (app/recording/replay.py): the live protocol on the replay's own hub, ``hello.replay``
    true, plus ``replay`` messages (transport state). Unknown replay: closed with 1008 and a reason."""
    if await _origin_refused(ws, svc):
        return
    await ws.accept()
    player = None if svc.replays is None else svc.replays.get(replay_id)
    if player is None:
        await ws.close(code=1008, reason=f"no replay {replay_id[:64]!r}")
        return
    await _serve(ws, player.hub, until=player.stopped)


async def _origin_refused(ws: WebSocket, svc: Svc) -> bool:
    origin = ws.headers.get("origin")
    if origin_allowed(origin, ws.headers.get("host"), ws.url.scheme, svc.settings.allowed_origins):
        return False
    log.warning("websocket refused: origin %r not allowed", origin)
    await ws.close(code=1008, reason="origin not allowed")
    return True


async def _serve(
    ws: WebSocket, hub: Hub, until: asyncio.Event | None = None, scope: frozenset[str] | None = None
) -> None:
    """Subscribe, then stream ``hub`` to the client until it goes (or ``until`` is set: the source ended)."""

    def known(bay: str) -> bool:
        return hub.live.has_bay(bay)  # looked up each time: a replay's seek replaces its live state

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
    sub, unknown = _subscription(sub_msg, known, scope)
    link = _Link(sub_msg.batch)
    ch = hub.attach(sub, sub_msg.resume)
    if unknown:
        ch.push_text(
            Error(
                seq=hub.seq, t=time.time(), code="unknown_bay", message=f"unknown bays or not yours: {unknown}"
            ).model_dump_json()
        )
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_send_loop(ws, ch, hub, link), name=f"ws-send:{ch.name}")
            tg.create_task(_receive_loop(ws, ch, hub, known, link, scope), name=f"ws-recv:{ch.name}")
            if until is not None:
                tg.create_task(_until(until), name=f"ws-until:{ch.name}")
    except* (WebSocketDisconnect, _Closed):
        pass
    finally:
        hub.detach(ch)
        if ws.application_state is WebSocketState.CONNECTED:
            ended = until is not None and until.is_set()
            with contextlib.suppress(Exception):
                await ws.close(code=1001 if ended else 1000, reason="replay closed" if ended else "")


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


async def _until(ev: asyncio.Event) -> None:
    await ev.wait()
    raise _Closed()


async def _send_loop(ws: WebSocket, ch: ClientChannel, hub: Hub, link: _Link) -> None:
    while True:
        texts = await ch.get_many(BATCH_MAX if link.batch else 1, timeout=HEARTBEAT_S)
        if not texts:
            texts = [hub.heartbeat()]
        try:
            if link.batch:  # read after the wait: a subscribe may have switched it meanwhile
                await ws.send_text(batch_frame(texts))
            else:
                for text in texts:
                    await ws.send_text(text)
        except (RuntimeError, OSError) as e:  # closed underneath us
            raise _Closed() from e


async def _receive_loop(
    ws: WebSocket,
    ch: ClientChannel,
    hub: Hub,
    known: Callable[[str], bool],
    link: _Link,
    scope: frozenset[str] | None = None,
) -> None:
    while True:
        raw = await _receive_text(ws)
        try:
            msg = CLIENT_MESSAGE.validate_json(raw)
        except ValidationError as e:
            ch.push_text(Error(seq=hub.seq, t=time.time(), code="bad_message", message=str(e)).model_dump_json())
            continue
        sub, unknown = _subscription(msg, known, scope)
        link.batch = msg.batch
        hub.resubscribe(ch, sub)
        if unknown:
            ch.push_text(
                Error(
                    seq=hub.seq, t=time.time(), code="unknown_bay", message=f"unknown bays or not yours: {unknown}"
                ).model_dump_json()
            )
