"""The hub: publish once, fan out to many websocket clients, each with its own bounded queue.

Every published message gets the next ``seq``, is encoded to JSON once, kept in a bounded replay ring
(for clients resuming after a gap) and offered to each client whose subscription matches. Per client:

- ``wave`` frames go to a bounded lane of their own; when it is full the oldest frame is dropped
  (the browser sees the time gap and draws it as a gap);
- ``vitals`` are conflated: a newer message for the same bay, device and parameter set replaces an
  unsent older one;
- everything else (status, device alarms, snapshots) is never dropped. If a client's reliable lane
  overflows, its queue is replaced by one fresh ``snapshot`` (reason "resync"), which carries the
  current status and alarms, so the client ends up exactly where a new client would. The same happens
  to a client that has taken nothing for ``offline_after_s`` while messages wait (a stalled reader: what
  it has queued is as old as an offline device's data), so it resumes from a snapshot, not from history.

Messages leave each client's queue in ``seq`` order, so a client's highest seen seq is a safe resume
point. The hub also keeps the live state (``LiveState``) that snapshots are made from, updated by the
same messages, so a snapshot at seq N is exactly the sum of messages up to N.

``Hub`` is the interface: ``InProcessHub`` for one instance; app/scale/redis_hub.py ``RedisHub`` (an
InProcessHub fed from a clinic-wide Redis stream) when several instances serve one clinic.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict

from app.live import UNASSIGNED, LiveState
from app.wire import Alarms, DeviceAlarmMsg, Heartbeat, Hello, ResumePoint, Snapshot, Status, Vitals, Wave

Publishable = Vitals | Wave | Status | DeviceAlarmMsg | Alarms
WaveDetail = Literal["full", "decimated", "none"]


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one client wants: which bays (None = all) and what waveform detail."""

    bays: frozenset[str] | None
    waves: WaveDetail

    def wants(self, bay: str, wave: bool | None) -> bool:
        """``wave`` is None for non-wave messages, else whether the frame is decimated."""
        if self.bays is not None and bay not in self.bays:
            return False
        if wave is None:
            return True
        if self.waves == "none":
            return False
        return wave == (self.waves == "decimated")


@dataclass(slots=True)
class _Entry:
    seq: int
    bay: str
    decimated: bool | None  # None: not a wave
    key: tuple[str, ...] | None  # conflation key for vitals
    text: str


@dataclass(slots=True)
class _Slot:
    entry: _Entry | None  # None once superseded by a newer conflated message


@dataclass(slots=True)
class ClientStats:
    """What happened to one client's messages."""

    sent: int = 0
    waves_dropped: int = 0
    vitals_conflated: int = 0
    resyncs: int = 0


class ClientChannel:
    """One websocket client's bounded queue, with the drop/conflate/resync rules of the module docstring."""

    def __init__(
        self,
        sub: Subscription,
        *,
        max_pending: int,
        max_waves: int,
        resync: Callable[[ClientChannel], str],
        name: str = "",
        stall_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sub = sub  # through the setter: precomputes what offer() checks
        self.name = name
        self._max_pending = max_pending
        self._max_waves = max_waves
        self._resync = resync
        self._main: deque[_Slot] = deque()
        self._live_main = 0
        self._waves: deque[_Entry] = deque()
        self._conflated: dict[tuple[str, ...], _Slot] = {}
        self._ready = asyncio.Event()
        self.stats = ClientStats()
        self.closed = False
        self._stall_s = stall_s
        self._clock = clock
        self._progress = clock()  # when the client last took a message, or its queue last became non-empty

    @property
    def sub(self) -> Subscription:
        """What this client receives (set by the hub on resubscribe)."""
        return self._sub

    @sub.setter
    def sub(self, sub: Subscription) -> None:
        self._sub = sub
        # offer() runs once per (published message x client of its bay): Subscription.wants, inlined.
        self._bays = sub.bays
        self._wave_detail: bool | None = None if sub.waves == "none" else sub.waves == "decimated"

    @property
    def pending(self) -> int:
        """Messages waiting to be sent."""
        return self._live_main + len(self._waves)

    def offer(self, entry: _Entry) -> None:
        """Queue a published message if the subscription wants it."""
        if self.closed or (self._bays is not None and entry.bay not in self._bays):
            return
        if entry.decimated is not None and entry.decimated != self._wave_detail:
            return  # a wave at a detail this client did not ask for (or none at all)
        if self._stall_s is not None:
            if self._live_main == 0 and not self._waves:
                self._progress = self._clock()
            elif self._clock() - self._progress > self._stall_s:
                self.reset(self._resync(self))  # the snapshot already includes this entry (live state)
                self.stats.resyncs += 1
                self._progress = self._clock()
                return
        if entry.decimated is not None:
            if len(self._waves) >= self._max_waves:
                self._waves.popleft()
                self.stats.waves_dropped += 1
            self._waves.append(entry)
        else:
            if entry.key is not None:
                old = self._conflated.get(entry.key)
                if old is not None and old.entry is not None:
                    old.entry = None  # superseded; keep seq order by appending the newer one
                    self._live_main -= 1
                    self.stats.vitals_conflated += 1
            if self._live_main >= self._max_pending:
                self.reset(self._resync(self))
                self.stats.resyncs += 1
                return
            if len(self._main) >= 2 * self._max_pending:  # superseded slots pile up behind a stuck client
                self._main = deque(s for s in self._main if s.entry is not None)
            slot = _Slot(entry)
            self._main.append(slot)
            self._live_main += 1
            if entry.key is not None:
                self._conflated[entry.key] = slot
        self._ready.set()

    def reset(self, text: str) -> None:
        """Drop everything queued and send ``text`` (a snapshot) next."""
        self._main.clear()
        self._waves.clear()
        self._conflated.clear()
        self._main.append(_Slot(_Entry(seq=-1, bay="", decimated=None, key=None, text=text)))
        self._live_main = 1
        self._ready.set()

    def push_text(self, text: str) -> None:
        """Queue a message that is not part of the published stream (hello, errors)."""
        self._main.append(_Slot(_Entry(seq=-1, bay="", decimated=None, key=None, text=text)))
        self._live_main += 1
        self._ready.set()

    def _pop(self) -> str | None:
        while self._main and self._main[0].entry is None:
            self._main.popleft()
        head = self._main[0].entry if self._main else None
        wave = self._waves[0] if self._waves else None
        if head is not None and (wave is None or head.seq < wave.seq):
            self._main.popleft()
            self._live_main -= 1
            if head.key is not None and self._conflated.get(head.key) is not None:
                slot = self._conflated[head.key]
                if slot.entry is head:
                    del self._conflated[head.key]
            return head.text
        if wave is not None:
            self._waves.popleft()
            return wave.text
        return None

    async def get(self, timeout: float | None = None) -> str | None:
        """The next message to send, or None after ``timeout`` seconds of nothing."""
        batch = await self.get_many(1, timeout)
        return batch[0] if batch else None

    async def get_many(self, limit: int, timeout: float | None = None) -> list[str]:
        """Up to ``limit`` queued messages in send order (waiting for the first), or [] after ``timeout`` seconds
        of nothing."""
        while True:
            out: list[str] = []
            while len(out) < limit:
                text = self._pop()
                if text is None:
                    break
                out.append(text)
            if out:
                self.stats.sent += len(out)
                self._progress = self._clock()
                return out
            self._ready.clear()
            try:
                async with asyncio.timeout(timeout):  # no extra task per wait (as wait_for makes in 3.11)
                    await self._ready.wait()
            except TimeoutError:
                return []


class Hub(Protocol):
    """Publish/subscribe for live data; in-process now, a Redis-backed transport later."""

    epoch: str
    seq: int
    live: LiveState
    stats: HubStats

    def publish(self, msg: Publishable) -> int:
        """Assign the next seq, update live state, fan out; returns the seq."""
        ...

    def attach(self, sub: Subscription, resume: ResumePoint | None) -> ClientChannel:
        """A new client: queues hello, then the missed deltas (resume) or a snapshot."""
        ...

    def resubscribe(self, ch: ClientChannel, sub: Subscription) -> None:
        """Change what a client receives; it gets a fresh snapshot of its new bays."""
        ...

    def detach(self, ch: ClientChannel) -> None:
        """The client went away."""
        ...

    def heartbeat(self) -> str:
        """An encoded heartbeat at the current seq."""
        ...

    def client_totals(self) -> ClientStats:
        """Delivery counters summed over every client so far."""
        ...

    @property
    def clients(self) -> frozenset[ClientChannel]:
        """Connected clients."""
        ...


@dataclass
class HubStats:
    """Hub-wide counters."""

    published: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    #: Messages that are never dropped (status, device_alarm, alarms), per bay and type: what every client
    #: subscribed to that bay must have received (the load benchmark checks it).
    reliable_by_bay: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Counters of clients that have gone (``client_totals`` adds the connected ones).
    gone: ClientStats = field(default_factory=ClientStats)


class HubBudgets(TypedDict):
    """A live hub's replay ring and client budgets (``Settings``), the same for either hub implementation."""

    ring_size: int
    max_pending: int
    max_waves: int
    stale_after_s: float
    offline_after_s: float


class InProcessHub:
    """The single-process hub."""

    def __init__(
        self,
        live: LiveState,
        *,
        ring_size: int = 20_000,
        max_pending: int = 2_000,
        max_waves: int = 300,
        stale_after_s: float = 3.0,
        offline_after_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        replay: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.epoch = uuid.uuid4().hex[:12]
        self.replay = replay  # a replay hub: hello says so (``Hello.replay``)
        self.seq = 0
        self.live = live
        self._ring: deque[_Entry] = deque(maxlen=ring_size)
        self._clients: set[ClientChannel] = set()
        # Clients by subscribed bay (and those that want every bay): a message is offered only to them.
        self._by_bay: dict[str, set[ClientChannel]] = {}
        self._every_bay: set[ClientChannel] = set()
        self._max_pending = max_pending
        self._max_waves = max_waves
        self._stale = stale_after_s
        self._offline = offline_after_s
        self._clock = clock
        self._monotonic = monotonic
        self.stats = HubStats()
        self._names = itertools.count(1)

    @property
    def clients(self) -> frozenset[ClientChannel]:
        """Connected clients."""
        return frozenset(self._clients)

    def publish(self, msg: Publishable) -> int:
        """Assign the next seq, update live state, encode once and fan out."""
        self.seq += 1
        msg = msg.model_copy(update={"seq": self.seq, "t": self._clock()})
        self._fan_out(msg, msg.model_dump_json())
        return self.seq

    def _fan_out(self, msg: Publishable, text: str) -> None:
        """Apply a message whose ``seq`` is assigned (here, or clinic-wide by a cross-instance transport) and
        whose encoding is ``text``: live state, resume ring, counters, client queues."""
        appeared = msg.bay == UNASSIGNED and UNASSIGNED not in self.live.bay_ids()
        self.live.apply(msg)
        decimated: bool | None = None
        key: tuple[str, ...] | None = None
        if isinstance(msg, Wave):
            decimated = msg.decimated
        elif isinstance(msg, Vitals):
            key = (msg.bay, msg.device_id, *(r.param for r in msg.readings))
        entry = _Entry(msg.seq, msg.bay, decimated, key, text)
        self._ring.append(entry)
        self.stats.published += 1
        self.stats.by_type[msg.type] = self.stats.by_type.get(msg.type, 0) + 1
        if decimated is None and key is None:
            per_bay = self.stats.reliable_by_bay.setdefault(msg.bay, {})
            per_bay[msg.type] = per_bay.get(msg.type, 0) + 1
        for ch in self._every_bay:
            ch.offer(entry)
        for ch in self._by_bay.get(msg.bay, ()):
            ch.offer(entry)
        if appeared:  # a device bound to no bay: screens showing every bay get a tile for it
            for ch in self._clients:
                if ch.sub.bays is None:
                    ch.reset(self._snapshot_text(ch.sub, "resync"))

    def _snapshot_text(self, sub: Subscription, reason: Literal["connect", "resync", "resubscribe", "seek"]) -> str:
        return Snapshot(
            seq=self.seq, t=self._clock(), reason=reason, bays=self.live.bays_out(sub.bays)
        ).model_dump_json()

    def _hello_text(self, sub: Subscription, resumed: bool, seq: int | None = None) -> str:
        return Hello(
            seq=self.seq if seq is None else seq,
            t=self._clock(),
            epoch=self.epoch,
            resumed=resumed,
            stale_after_s=self._stale,
            offline_after_s=self._offline,
            bays=sorted(sub.bays) if sub.bays is not None else self.live.bay_ids(),
            waves=sub.waves,
            replay=self.replay,
        ).model_dump_json()

    def _missed(self, resume: ResumePoint | None) -> Iterable[_Entry] | None:
        """Ring entries after the resume point, or None when the gap cannot be filled."""
        if resume is None or resume.epoch != self.epoch or resume.seq > self.seq:
            return None
        first = self._ring[0].seq if self._ring else self.seq + 1
        if resume.seq < first - 1:
            return None
        return itertools.islice(self._ring, resume.seq - first + 1, None)

    def attach(self, sub: Subscription, resume: ResumePoint | None) -> ClientChannel:
        """A new client: hello, then the missed deltas when the resume point is still in the ring, else a
        snapshot."""
        ch = ClientChannel(
            sub,
            max_pending=self._max_pending,
            max_waves=self._max_waves,
            resync=lambda c: self._snapshot_text(c.sub, "resync"),
            name=f"client-{next(self._names)}",
            stall_s=self._offline,
            clock=self._monotonic,
        )
        missed = self._missed(resume)
        # On resume, hello carries the resume point: the deltas that follow continue from it.
        ch.push_text(
            self._hello_text(sub, resumed=missed is not None, seq=resume.seq if missed is not None and resume else None)
        )
        if missed is None:
            ch.push_text(self._snapshot_text(sub, "connect"))
        else:
            for entry in missed:
                ch.offer(entry)
        self._clients.add(ch)
        self._index(ch, add=True)
        return ch

    def _index(self, ch: ClientChannel, *, add: bool) -> None:
        lanes = [self._every_bay] if ch.sub.bays is None else [self._by_bay.setdefault(b, set()) for b in ch.sub.bays]
        for lane in lanes:
            if add:
                lane.add(ch)
            else:
                lane.discard(ch)

    def resubscribe(self, ch: ClientChannel, sub: Subscription) -> None:
        """Switch a client to another subscription, with a fresh hello and snapshot."""
        attached = ch in self._clients
        if attached:
            self._index(ch, add=False)
        ch.sub = sub
        if attached:
            self._index(ch, add=True)
        ch.reset(self._hello_text(sub, resumed=False))
        ch.push_text(self._snapshot_text(sub, "resubscribe"))

    def reset_live(self, live: LiveState) -> None:
        """Replace the whole state (a replay seeking): the resume ring is emptied, since deltas from before
        cannot be continued, and every client gets a fresh snapshot (reason "seek") in place of its queue."""
        self.live = live
        self._ring.clear()
        for ch in self._clients:
            if ch.stats.sent == 0:  # its hello is still queued: keep it first
                ch.reset(self._hello_text(ch.sub, resumed=False))
                ch.push_text(self._snapshot_text(ch.sub, "seek"))
            else:
                ch.reset(self._snapshot_text(ch.sub, "seek"))

    def push_all(self, text: str) -> None:
        """Queue a message outside the published stream (not in the resume ring) for every client."""
        for ch in self._clients:
            ch.push_text(text)

    def detach(self, ch: ClientChannel) -> None:
        """Forget a client."""
        if ch in self._clients:
            gone = self.stats.gone
            gone.sent += ch.stats.sent
            gone.waves_dropped += ch.stats.waves_dropped
            gone.vitals_conflated += ch.stats.vitals_conflated
            gone.resyncs += ch.stats.resyncs
        ch.closed = True
        if ch in self._clients:
            self._index(ch, add=False)
        self._clients.discard(ch)

    def client_totals(self) -> ClientStats:
        """What happened to every client's messages so far (connected and gone)."""
        total = (
            ClientStats(**vars(self.stats.gone))
            if False
            else ClientStats(
                sent=self.stats.gone.sent,
                waves_dropped=self.stats.gone.waves_dropped,
                vitals_conflated=self.stats.gone.vitals_conflated,
                resyncs=self.stats.gone.resyncs,
            )
        )
        for ch in self._clients:
            total.sent += ch.stats.sent
            total.waves_dropped += ch.stats.waves_dropped
            total.vitals_conflated += ch.stats.vitals_conflated
            total.resyncs += ch.stats.resyncs
        return total

    def heartbeat(self) -> str:
        """A heartbeat at the current seq."""
        return Heartbeat(seq=self.seq, t=self._clock()).model_dump_json()
