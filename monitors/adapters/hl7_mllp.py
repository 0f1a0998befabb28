"""HL7 v2 (IHE PCD-01) over MLLP: a listener that never loses an acknowledged message.

Monitors and gateways connect (many at once) and send ORU^R01 (numerics, waveforms) and ORU^R40 (device
alarms). Each connection is one ordered lane: a message is decoded, then its raw bytes and its readings
are handed to the consumer as one ``Batch``; the ACK is sent only after the consumer resolves the batch's
``committed`` future, i.e. after the store has committed it (PROTOCOLS.md §1: "AA only after the message is
durably stored: the sender deletes its copy on AA"). Then the next message of that connection is read.

Answers (original mode): AA stored; AE understood but no usable content (still archived raw); AR
unsupported type/version/processing id, oversize frame, or the store could not commit (the sender should
retry). Enhanced mode (MSH-15/16 present): commit ACK CA/CE/CR as MSH-15 asks, application ACK as MSH-16
asks. Anything that cannot be parsed still gets an answer (MSA-2 = MSH-10 when it can be read).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from monitors.base import Adapter, Batch, Item
from monitors.models import RawMessage
from monitors.protocols import ack as hl7ack
from monitors.protocols import mllp, pcd01

log = logging.getLogger(__name__)

AckCode = Literal["AA", "AE", "AR", "CA", "CE", "CR"]


@dataclass
class Hl7Stats:
    """Counters of what the listener has answered and seen."""

    connections: int = 0
    refused_connections: int = 0
    messages: int = 0
    aa: int = 0
    ae: int = 0
    ar: int = 0
    unknown_observations: int = 0
    unknown_codes: dict[str, int] = field(default_factory=dict)


class Hl7MllpAdapter(Adapter):
    """An asyncio MLLP server decoding PCD-01 messages into readings, ACKing after durable commit."""

    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        max_frame_bytes: int = 4 * 1024 * 1024,
        allow_from: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout_s: float = 600.0,
        commit_timeout_s: float = 10.0,
        max_connections: int = 256,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._max_frame = max_frame_bytes
        self._allow = tuple(allow_from)
        self._ssl = ssl_context
        self._idle = idle_timeout_s
        self._commit_timeout = commit_timeout_s
        self._max_connections = max_connections
        self._wall = wall
        self._server: asyncio.Server | None = None
        self._queue: asyncio.Queue[Batch] = asyncio.Queue(maxsize=1_000)
        self._conns: set[asyncio.Task[None]] = set()
        self._refused_logged: set[str] = set()
        self.stats = Hl7Stats()
        self.bound: tuple[str, int] | None = None

    def describe(self) -> dict[str, object]:
        """Where the listener is and what it has done (for /api/monitors)."""
        return {
            "listening": f"{self.bound[0]}:{self.bound[1]}" if self.bound else None,
            "tls": self._ssl is not None,
            "stats": self.stats.__dict__ | {"unknown_codes": dict(self.stats.unknown_codes)},
        }

    async def open(self) -> None:
        """Start listening (raises OSError if the port is taken; the Supervisor retries)."""
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self.port, ssl=self._ssl, limit=self._max_frame + 1024
        )
        sock = self._server.sockets[0].getsockname()
        self.bound = (str(sock[0]), int(sock[1]))
        log.info("HL7 MLLP listener %s on %s:%d%s", self.name, *self.bound, " (TLS)" if self._ssl else "")

    async def close(self) -> None:
        """Stop listening and drop open connections (unACKed messages will be resent by their senders)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        for task in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        self._server = None
        self.bound = None

    async def readings(self) -> AsyncIterator[Item | Batch]:
        """Batches from every connection, in each connection's order."""
        while True:
            yield await self._queue.get()

    # ---- connections -------------------------------------------------------------------------

    def _allowed(self, host: str) -> bool:
        if not self._allow:
            return True
        try:
            addr = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        return any(addr in net for net in self._allow)

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        peer_s = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        task.set_name(f"hl7:{self.name}:{peer_s}")
        host = peer[0] if isinstance(peer, tuple) else ""
        if not self._allowed(host):
            self.stats.refused_connections += 1
            if host not in self._refused_logged:
                log.warning("HL7 %s: connection from %s refused (not in allow_from)", self.name, host)
                self._refused_logged.add(host)
            writer.close()
            return
        if len(self._conns) >= self._max_connections:
            self.stats.refused_connections += 1
            if "max" not in self._refused_logged:
                log.warning(
                    "HL7 %s: connection from %s refused: %d connections open", self.name, peer_s, len(self._conns)
                )
                self._refused_logged.add("max")
            writer.close()
            return
        self._conns.add(task)
        self.stats.connections += 1
        framer = mllp.MLLPFramer(self._max_frame)
        try:
            while True:
                try:
                    async with asyncio.timeout(self._idle):  # cheaper than wait_for: no extra task per read
                        data = await reader.read(65536)
                except TimeoutError:
                    log.info("HL7 %s: closing idle connection %s", self.name, peer_s)
                    break
                if not data:
                    break
                for frame in framer.feed(data):
                    for answer in await self._handle(frame, peer_s):
                        writer.write(mllp.frame(answer))
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as e:
            log.info("HL7 %s: connection %s ended: %s", self.name, peer_s, e)
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)

    async def _handle(self, frame: mllp.Frame, peer: str) -> list[bytes]:
        """Decode, hand over for durable commit, and return the answers to send."""
        now = self._wall()
        self.stats.messages += 1
        if isinstance(frame, mllp.FrameError) and frame.reason == "interrupted":
            # A sender restarted mid-frame (a VT arrived inside a frame): it will resend what it lost.
            log.info("HL7 %s: partial frame from %s discarded (%d bytes)", self.name, peer, frame.size)
            raw = RawMessage(
                protocol="hl7v2",
                source=peer,
                received=now,
                payload=frame.head,
                control_id=pcd01.peek_control_id(frame.head),
                outcome="discarded",
                detail=f"partial frame ({frame.size} bytes) interrupted by a new frame start",
            )
            await self._commit((raw,), None)
            return []
        if isinstance(frame, mllp.FrameError):
            control_id = pcd01.peek_control_id(frame.head)
            detail = f"frame of {frame.size} bytes exceeds the {self._max_frame}-byte limit (first bytes kept)"
            raw = RawMessage(
                protocol="hl7v2",
                source=peer,
                received=now,
                payload=frame.head,
                control_id=control_id,
                outcome="AR",
                detail=detail,
            )
            await self._commit((raw,), None)
            err = pcd01.DecodeError(207, detail, control_id)
            return [self._answer(frame.head, "AR", err, now)]
        try:
            decoded = pcd01.decode(frame, received=now)
        except pcd01.DecodeError as e:
            code: AckCode = "AR" if e.ack_code == "AR" else "AE"
            raw = RawMessage(
                protocol="hl7v2",
                source=peer,
                received=now,
                payload=frame,
                control_id=e.control_id,
                outcome=code,
                detail=f"{e.code}: {e.message}",
            )
            if not await self._commit((raw,), None):
                code = "AR"
            return [self._answer(frame, code, e, now)]
        self._count_unknown(decoded)
        device = decoded.device_id
        if decoded.items:
            outcome, error = "AA", None
            detail = "; ".join(decoded.problems)[:2000]
        else:
            outcome = "AE"
            reason = "; ".join(decoded.problems) or "no usable observation"
            error = pcd01.DecodeError(207 if decoded.problems else 101, reason[:500], decoded.control_id)
            detail = reason[:2000]
        raw = RawMessage(
            protocol="hl7v2",
            source=peer,
            received=now,
            payload=frame,
            control_id=decoded.control_id,
            outcome=outcome,
            detail=detail,
            device_id=device,
        )
        items: tuple[Item, ...] = (raw, *decoded.items) if outcome == "AA" else (raw,)
        if not await self._commit(items, decoded.location):
            outcome = "AR"
            error = pcd01.DecodeError(207, "cannot store now; resend later", decoded.control_id)
        return self._answers(frame, decoded, outcome, error, now)

    async def _commit(self, items: tuple[Item, ...], location: str | None) -> bool:
        """Hand items to the consumer and wait until they are durable; False if they could not be stored."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self._commit_timeout):
                await self._queue.put(Batch(items, fut, location))
                await fut
        except Exception as e:  # store failure or timeout: the sender must keep its copy and retry
            log.error("HL7 %s: could not commit message: %s", self.name, e)
            return False
        return True

    def _count_unknown(self, decoded: pcd01.Decoded) -> None:
        for unk in decoded.unknown:
            self.stats.unknown_observations += 1
            seen = self.stats.unknown_codes.get(unk.code, 0)
            if seen == 0:
                log.warning("HL7 %s: unknown observation %s (%s); kept raw", self.name, unk.code, unk.reason)
            self.stats.unknown_codes[unk.code] = seen + 1

    def _answer(
        self,
        received: bytes | pcd01.MessageHeader,
        code: AckCode,
        error: pcd01.DecodeError | None,
        now: datetime,
    ) -> bytes:
        match code:
            case "AA" | "CA":
                self.stats.aa += 1
            case "AE" | "CE":
                self.stats.ae += 1
            case _:
                self.stats.ar += 1
        return hl7ack.build_ack(received, code, error=error, now=now)

    def _answers(
        self, received: bytes, decoded: pcd01.Decoded, outcome: str, error: pcd01.DecodeError | None, now: datetime
    ) -> list[bytes]:
        """Original mode: one ACK. Enhanced mode (MSH-15/16 present): commit and/or application ACKs."""
        accept = (decoded.header.accept_ack_type or "").strip().upper()
        app = (decoded.header.app_ack_type or "").strip().upper()
        if not accept and not app:
            return [self._answer(decoded.header, _ack_code(outcome, False), error, now)]
        out: list[bytes] = []
        ok = outcome == "AA"
        if _wanted(accept, ok):
            out.append(self._answer(decoded.header, _ack_code(outcome, True), error, now))
        if _wanted(app, ok):
            out.append(self._answer(decoded.header, _ack_code(outcome, False), error, now))
        return out


def _ack_code(outcome: str, commit: bool) -> AckCode:
    codes: dict[tuple[str, bool], AckCode] = {
        ("AA", False): "AA",
        ("AE", False): "AE",
        ("AR", False): "AR",
        ("AA", True): "CA",
        ("AE", True): "CE",
        ("AR", True): "CR",
    }
    return codes[(outcome, commit)]


def _wanted(condition: str, ok: bool) -> bool:
    """HL7 table 0155: AL always, NE never, ER on error, SU on success (empty: not asked)."""
    return condition == "AL" or (condition == "ER" and not ok) or (condition == "SU" and ok)
