"""The hub across instances: one clinic-wide Redis stream carries every published message.

Why a Redis Stream (and not pub/sub): the hub's contract is a single ordered sequence with a resume point.
A stream is ordered, every reader sees the same order, and it keeps a bounded history (``XADD MAXLEN``), so an
instance that was briefly disconnected reads what it missed with ``XREAD`` from its last id and a freshly
started one fills its resume ring with ``XRANGE``. Pub/sub delivers at most once: a reconnecting subscriber
silently loses what was published meanwhile, and ``alarms`` / ``status`` messages must never be lost.

How the clinic-wide ``seq`` is made: a Lua script (atomic in Redis) increments ``{cluster}:seq`` and appends
the message with the stream id ``<seq>-0``, so stream order *is* seq order and seq has no gaps. The publisher
encodes the message once (``seq`` 0) and the script splices the real seq into the JSON prefix
(``{"v":1,"seq":N,...``): the text in the stream is what every browser receives, on every instance, without a
second encoding. The same script keeps ``{cluster}:last``, a hash of the latest text per live-state key (a
device's status, a bay's alarms, a device's latest numerics set...). LiveState is last-writer-wins per key,
so a newly started instance that folds that hash in seq order has exactly the live state of the others.

``{cluster}:epoch`` names the stream's lifetime; it is created once (by the first instance) and kept. If
Redis loses it (flushed, restarted without persistence) the next instance to notice starts a new epoch and
every client resyncs from a snapshot, as after a server restart.

Each instance reads the stream in one task and feeds what it reads through InProcessHub's own fan-out
(resume ring, LiveState, per-client queues): clients, subscriptions, hello/snapshot/resume work exactly as
on one instance, and a client may resume on any instance with the ``{epoch, seq}`` it had on another.
``listeners`` see every message in stream order (alarm ownership feeds the alarm engine from them).

Redis going away at run time: the loss is logged once, and the instance keeps serving its own clients
from a local continuation (``<epoch>.local<N>``, a different epoch, so nobody resumes across the gap): its own
ingest and alarms still reach its screens. Device status and alarms published meanwhile are buffered
(numerics and waveforms are not: stale by the time they could be sent) and sent on reconnect, which retries
with capped, jittered backoff. Back on the stream, the instance rebuilds its live state from Redis, resyncs
its clients, then sends the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.hub import InProcessHub, Publishable, _Entry
from app.live import LiveState
from app.wire import SERVER_MESSAGE, Alarms, DeviceAlarmMsg, Status, Vitals, Wave

log = logging.getLogger(__name__)

_PREFIX: Final = '{"v":1,"seq":0,'
#: Buffered messages kept while Redis is away (beyond this the oldest are dropped, and that is logged).
_OUTAGE_BUFFER = 20_000
_BATCH = 500
#: Folding a message this long after it was published is logged (doubling steps: not once per message).
LAG_WARN_S = 1.0

#: KEYS: stream, seq, last, epoch. ARGV: maxlen, epoch, then per message: last-key, body, bay, wave flag,
#: conflation key. Returns the last seq assigned, or -1 when the epoch is not ours (Redis lost it).
_PUBLISH_LUA = """
if redis.call('GET', KEYS[4]) ~= ARGV[2] then return -1 end
local s = 0
for i = 3, #ARGV, 5 do
  s = redis.call('INCR', KEYS[2])
  local text = '{"v":1,"seq":' .. string.format('%d', s) .. ',' .. ARGV[i + 1]
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], string.format('%d', s) .. '-0',
             'm', text, 'b', ARGV[i + 2], 'w', ARGV[i + 3], 'c', ARGV[i + 4])
  redis.call('HSET', KEYS[3], ARGV[i], text)
end
return s
"""

#: KEYS: epoch, seq, last, stream. ARGV: a new epoch (used only if none exists: then the old stream goes).
#: Returns {epoch, seq, latest texts}, read atomically.
_JOIN_LUA = """
local e = redis.call('GET', KEYS[1])
if not e then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  redis.call('SET', KEYS[1], ARGV[1])
  e = ARGV[1]
end
local s = tonumber(redis.call('GET', KEYS[2]) or '0')
return {e, s, redis.call('HVALS', KEYS[3])}
"""


class _EpochGone(RedisError):
    """The stream's epoch is no longer in Redis: rejoin (a new epoch) before publishing."""


class RedisUnavailable(Exception):
    """Redis could not be reached (at start-up): the message says where and why."""


def redis_problem(url: str, timeout_s: float = 3.0) -> str | None:
    """Why Redis at ``url`` cannot be used, or None when it answers PING (a synchronous start-up check)."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            client.ping()
        finally:
            client.close()
    except (RedisError, OSError, ValueError) as e:
        return f"Redis at {_safe_url(url)} is not reachable ({type(e).__name__}: {e}); hub = 'redis' needs it"
    return None


def _safe_url(url: str) -> str:
    """The URL without a password."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def connect(url: str) -> aioredis.Redis:
    """An asyncio Redis client for the hub and the leases (responses decoded as text)."""
    return aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=3.0, socket_timeout=10.0)


def latest_key(msg: Publishable) -> str:
    """The live-state key a message overwrites (see LiveState.apply)."""
    if isinstance(msg, Vitals):
        return "v|" + "|".join((msg.bay, msg.device_id, *(r.param for r in msg.readings)))
    if isinstance(msg, Wave):
        return f"w|{msg.bay}|{msg.device_id}"
    if isinstance(msg, Status):
        return f"s|{msg.bay}|{msg.device.device_id}"
    if isinstance(msg, Alarms):
        return f"a|{msg.bay}"
    return f"d|{msg.bay}|{msg.alarm.device_id}|{msg.alarm.code}"


@dataclass(slots=True)
class _Out:
    """One message waiting to be appended to the stream."""

    key: str
    body: str  # its JSON after the ``{"v":1,"seq":0,`` prefix
    bay: str
    wave: str  # "" not a wave, "f" full rate, "d" decimated
    conflate: str  # vitals: "bay|device|params" (the client queues' conflation key); waves: the device

    def args(self) -> list[str]:
        return [self.key, self.body, self.bay, self.wave, self.conflate]


#: Given a Redis pipeline, queues commands on it (alarm-state saves, alarm commands); awaiting queues them.
Op = Callable[[Any], Awaitable[None]]


class RedisHub(InProcessHub):
    """InProcessHub whose sequence is the clinic-wide Redis stream (see the module docstring)."""

    def __init__(
        self,
        live: LiveState,
        client: aioredis.Redis,
        *,
        cluster: str,
        instance_id: str,
        bays: Iterable[tuple[str, str]],
        ring_size: int = 20_000,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        **options: Any,
    ) -> None:
        super().__init__(live, ring_size=ring_size, **options)
        self.redis: Any = client  # redis-py's typing of stream replies is loose; the shapes are checked here
        self.cluster = cluster
        self.instance_id = instance_id
        self._bays = list(bays)
        self._ring_size = ring_size
        self._backoff = (backoff_initial_s, backoff_max_s)
        self.keys = _Keys(cluster)
        self._publish_script = client.register_script(_PUBLISH_LUA)
        self._join_script = client.register_script(_JOIN_LUA)
        self.clinic_epoch = ""
        self._last = 0  # the last stream seq folded in
        self._out: deque[_Out | Op] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set when nothing waits to be sent
        self._idle.set()
        self._up = asyncio.Event()
        self._local_n = 0
        self._dropped = 0
        self.listeners: list[Callable[[Publishable], None]] = []
        #: Called after the live state was rebuilt from Redis (start, after an outage or a gap).
        self.join_listeners: list[Callable[[], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.outages = 0
        #: Longest time from a message's publication (any instance) to its fold here: how far behind it ran.
        self.max_lag_s = 0.0
        self._lag_logged: float | None = None
        self._read_ok = False

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the clinic's stream (raises RedisUnavailable when Redis does not answer) and start reading."""
        try:
            await self._join()
        except (RedisError, OSError) as e:
            raise RedisUnavailable(f"Redis is not reachable: {type(e).__name__}: {e}") from e
        self._up.set()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="hub:redis-read"),
            asyncio.create_task(self._write_loop(), name="hub:redis-write"),
        ]
        log.info(
            "hub: clinic stream %s joined at seq %d (epoch %s, instance %s)",
            self.keys.stream,
            self.seq,
            self.epoch,
            self.instance_id,
        )

    async def stop(self) -> None:
        """Send what is queued (briefly), stop reading, close the client."""
        if self._up.is_set() and self._out:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._drain()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.redis.aclose()

    @property
    def connected(self) -> bool:
        """Whether the instance is on the clinic stream (False: serving local clients only)."""
        return self._up.is_set()

    # ---- publishing --------------------------------------------------------------------------------

    def publish(self, msg: Publishable) -> int:
        """Queue the message for the clinic stream (it reaches clients here and everywhere once it is read
        back with its seq); returns the latest seq folded in so far, not this message's."""
        if not self._up.is_set():
            seq = super().publish(msg)  # local continuation while Redis is away
            if isinstance(msg, Status | DeviceAlarmMsg | Alarms):  # numerics and waves are stale when late
                self._queue(self._encode(msg))
            return seq
        self._queue(self._encode(msg))
        return self.seq

    def enqueue(self, op: Op) -> None:
        """Run ``op`` on the writer's pipeline, in order with the messages published before and after it."""
        self._queue(op)

    def _queue(self, item: _Out | Op) -> None:
        if len(self._out) >= _OUTAGE_BUFFER:
            self._out.popleft()
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning("hub: %d messages dropped while Redis was unreachable", self._dropped)
        self._out.append(item)
        self._idle.clear()
        self._wake.set()

    def _encode(self, msg: Publishable) -> _Out:
        text = msg.model_copy(update={"seq": 0, "t": self._clock()}).model_dump_json()
        assert text.startswith(_PREFIX), text[:40]
        wave = ""
        conflate = ""
        if isinstance(msg, Wave):
            wave = "d" if msg.decimated else "f"
            conflate = msg.device_id  # waves are not conflated: the field carries the device instead
        elif isinstance(msg, Vitals):
            conflate = "|".join((msg.bay, msg.device_id, *(r.param for r in msg.readings)))
        return _Out(latest_key(msg), text[len(_PREFIX) :], msg.bay, wave, conflate)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            await self._up.wait()
            self._wake.clear()
            try:
                await self._drain()
                if not self._out:
                    self._idle.set()
            except (RedisError, OSError) as e:
                if isinstance(e, _EpochGone) or not await self._alive():
                    self._lost(e)
                else:
                    self._wake.set()  # one dead pooled connection (Redis restarted): send again on a fresh one

    async def _drain(self) -> None:
        """Send everything queued, in order, one pipeline per batch; on failure the batch is put back."""
        while self._out:
            batch: list[_Out | Op] = []
            while self._out and len(batch) < _BATCH:
                batch.append(self._out.popleft())
            epoch = self.clinic_epoch
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    run: list[str] = []
                    for item in batch:
                        if isinstance(item, _Out):
                            run.extend(item.args())
                            continue
                        if run:
                            await self._publish_on(pipe, run, epoch)
                            run = []
                        await item(pipe)
                    if run:
                        await self._publish_on(pipe, run, epoch)
                    results = await pipe.execute()
            except BaseException:
                self._out.extendleft(reversed(batch))  # at least once: sent again after a reconnect
                raise
            if any(r == -1 for r in results if isinstance(r, int)):
                self._out.extendleft(reversed(batch))  # refused whole: sent again on the new epoch
                if epoch != self.clinic_epoch:
                    continue  # we rejoined a new epoch meanwhile: just send again
                raise _EpochGone("the clinic epoch is gone from Redis (flushed or restarted empty)")

    async def _publish_on(self, pipe: Any, args: list[str], epoch: str) -> None:
        keys = [self.keys.stream, self.keys.seq, self.keys.last, self.keys.epoch]
        await self._publish_script(keys=keys, args=[str(self._ring_size), epoch, *args], client=pipe)

    # ---- reading -----------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        backoff = self._backoff[0]
        strikes = 0
        while True:
            try:
                if not self._up.is_set():
                    await self._join()  # then the writer sends what was published meanwhile
                    self._up.set()
                    self._wake.set()
                    log.warning("hub: Redis reachable again; back on the clinic stream at seq %d", self.seq)
                    backoff = self._backoff[0]
                self._read_ok = False
                await self._follow()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as e:
                strikes = 1 if self._read_ok else strikes + 1  # consecutive failures without a good read
                if strikes < 3 and self._up.is_set() and await self._alive():
                    await asyncio.sleep(0.05)  # one dead pooled connection: follow again on a fresh one
                    continue
                self._lost(e)
                await asyncio.sleep(random.uniform(backoff / 2, backoff))
                backoff = min(backoff * 2, self._backoff[1])

    async def _alive(self) -> bool:
        """Whether Redis answers now (after an error: a stale pooled connection, or Redis gone?)."""
        try:
            async with asyncio.timeout(2.0):
                await self.redis.ping()
        except (RedisError, OSError, TimeoutError):
            return False
        return True

    async def _follow(self) -> None:
        """Fold stream entries in as they come; a gap (we fell further behind than the stream keeps) rejoins."""
        while self._up.is_set():
            got = await self.redis.xread({self.keys.stream: f"{self._last}-0"}, count=_BATCH, block=1000)
            self._read_ok = True
            for _stream, entries in got or ():
                for entry_id, fields in entries:
                    seq = int(entry_id.split("-", 1)[0])
                    if seq != self._last + 1:
                        log.warning("hub: stream gap (%d after %d); rebuilding live state", seq, self._last)
                        await self._join()
                        return
                    self._fold(seq, fields)

    def _fold(self, seq: int, fields: dict[str, str]) -> None:
        text = fields.get("m", "")
        try:
            msg = _message(text, fields)
        except (ValueError, KeyError, IndexError):  # a foreign or newer writer's entry: skip it, keep following
            log.exception("hub: stream entry %d unreadable; skipped", seq)
            msg = None
        if msg is None:
            self._last = seq
            return
        self.seq = seq
        self._last = seq
        self._fan_out(msg, text)
        lag = self._clock() - msg.t  # publish (encode) time on whichever instance to folded here
        if lag > self.max_lag_s:
            self.max_lag_s = lag
            if lag > LAG_WARN_S and (self._lag_logged is None or lag > 2 * self._lag_logged):
                self._lag_logged = lag
                log.warning("hub: stream folded %.1f s after publication (seq %d, %s)", lag, seq, msg.type)

    def _fan_out(self, msg: Publishable, text: str) -> None:
        super()._fan_out(msg, text)
        for listener in self.listeners:
            try:
                listener(msg)
            except Exception:  # one failing consumer must not stop the stream for the others
                log.exception("hub listener failed on %s seq %d", msg.type, msg.seq)

    async def _join(self) -> None:
        """Read epoch, seq and the latest text per key atomically; rebuild live state and resume ring from
        them; resync every client. Used at start, after an outage and after a gap."""
        keys = [self.keys.epoch, self.keys.seq, self.keys.last, self.keys.stream]
        epoch, seq, texts = await self._join_script(keys=keys, args=[uuid.uuid4().hex[:12]])
        seq = int(seq)
        live = LiveState(self._bays)
        parsed = [m for m in (_latest(t) for t in texts) if m is not None and m.seq <= seq]
        for m in sorted(parsed, key=lambda m: m.seq):
            live.apply(m)
        ring: list[_Entry] = []
        start = max(1, seq - self._ring_size + 1)
        while start <= seq:
            entries = await self.redis.xrange(self.keys.stream, f"{start}-0", f"{seq}-0", count=2000)
            if not entries:
                break
            for entry_id, fields in entries:
                ring.append(_entry(int(entry_id.split("-", 1)[0]), fields))
            start = ring[-1].seq + 1
        first_join = not self.clinic_epoch
        if not first_join and epoch != self.clinic_epoch:
            log.warning("hub: clinic epoch changed (%s → %s): Redis lost the stream", self.clinic_epoch, epoch)
        self.clinic_epoch = epoch
        self.epoch = epoch
        self.live = live
        self.seq = seq
        self._last = seq
        self._ring.clear()
        self._ring.extend(ring)
        for hook in self.join_listeners:
            try:
                hook()
            except Exception:
                log.exception("hub join listener failed")
        if not first_join:
            self._resync_all()

    def _lost(self, e: BaseException) -> None:
        """Redis went away: log once, continue locally under an epoch of our own."""
        if not self._up.is_set() and self.epoch != self.clinic_epoch:
            return
        self._up.clear()
        self.outages += 1
        self._local_n += 1
        self.epoch = f"{self.clinic_epoch}.local{self._local_n}"
        self._ring.clear()
        log.warning(
            "hub: Redis unreachable (%s: %s); serving local clients only, reconnecting with backoff",
            type(e).__name__,
            e,
        )
        self._resync_all()

    def _resync_all(self) -> None:
        for ch in self._clients:
            ch.reset(self._hello_text(ch.sub, resumed=False))
            ch.push_text(self._snapshot_text(ch.sub, "resync"))

    def texts_after(self, seq: int, bay: str) -> list[str]:
        """Texts of the bay's non-wave messages after ``seq`` still in the resume ring (a new alarm owner
        re-feeds them)."""
        return [e.text for e in self._ring if e.seq > seq and e.bay == bay and e.decimated is None]

    async def wait_folded(self, timeout_s: float = 5.0) -> None:
        """Wait until everything published here so far has been read back (tests, shutdown)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()


@dataclass(frozen=True, slots=True)
class _Keys:
    cluster: str

    def _k(self, name: str) -> str:
        return f"vigil:{{{self.cluster}}}:{name}"  # one hash tag: every key of a clinic in one cluster slot

    @property
    def stream(self) -> str:
        return self._k("hub")

    @property
    def seq(self) -> str:
        return self._k("seq")

    @property
    def last(self) -> str:
        return self._k("last")

    @property
    def epoch(self) -> str:
        return self._k("epoch")

    @property
    def commands(self) -> str:
        return self._k("alarm-commands")

    def lease(self, bay: str) -> str:
        return self._k(f"lease:{bay}")

    def prefer(self, bay: str) -> str:
        return self._k(f"prefer:{bay}")

    def alarm_state(self, bay: str) -> str:
        return self._k(f"alarm-state:{bay}")


def _message(text: str, fields: dict[str, str] | None) -> Publishable | None:
    """The message behind a stream text. Waves are not decoded: live state needs only bay, device and time."""
    if fields is not None and fields.get("w"):
        seq, t = text[len('{"v":1,"seq":') :].split(',"type"', 1)[0].split(',"t":')
        return Wave.model_construct(  # type: ignore[call-arg]  # live state reads only these fields of a wave
            seq=int(seq), t=float(t), bay=fields["b"], device_id=fields["c"], decimated=fields["w"] == "d"
        )
    msg = SERVER_MESSAGE.validate_json(text)
    if isinstance(msg, Vitals | Wave | Status | DeviceAlarmMsg | Alarms):
        return msg
    return None


def _latest(text: str) -> Publishable | None:
    """A message of the latest-per-key hash, or None when unreadable (logged)."""
    try:
        return _message(text, None)
    except ValueError:
        log.exception("hub: a latest-state entry in Redis is unreadable; skipped")
        return None


def _entry(seq: int, fields: dict[str, str]) -> _Entry:
    w = fields.get("w", "")
    c = fields.get("c", "")
    return _Entry(
        seq=seq,
        bay=fields["b"],
        decimated=None if not w else w == "d",
        key=tuple(c.split("|")) if c and not w else None,
        text=fields["m"],
    )
