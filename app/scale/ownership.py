"""Alarm ownership: exactly one instance evaluates each bay's alarms at a time.

Why a Redis lease (``SET key me NX PX ttl``, renewed by a compare-and-renew Lua script) rather than a
PostgreSQL advisory lock: an advisory lock lives as long as its database session, and a session whose
instance vanished without closing its socket (power loss, network partition) lingers until TCP keepalive
gives up, minutes by default, far outside the 10 s technical-alarm budget (CLINICAL.md T6). A lease expires
``alarm_lease_s`` after its last renewal however its owner died, and Redis already carries the stream the
owner reads its inputs from. Renewal is compare-and-renew, and every save of alarm state is fenced on the
lease (a Lua script writes only while the lease names this instance), so an owner that lost its lease cannot
overwrite its successor's state.

Inputs reach the owner however they enter the cluster:

- readings, device status and device alarms: every instance publishes them on the clinic stream; the owner
  feeds its AlarmService from what it reads there (``on_message``), so it evaluates readings ingested on any
  instance;
- acknowledge, audio pause/resume, phase changes, baselines and charted scores: ``AlarmService.apply`` on a
  bay this instance does not own calls ``forward``, which appends the inputs to ``{cluster}:alarm-commands``,
  a Redis stream the owner follows.

State: after every change the owner saves the bay's engine state (``BayAlarmState`` is JSON) with the last
stream seq and command id it has folded in: at once, before the ``alarms`` message an evaluation publishes
(same ordered writer, so a successor never adopts a state older than an alarm it can see), and otherwise
once per renewal. A successor adopts that state, then re-feeds the stream entries and commands after those
positions: an alarm active before the owner died is still active, and nothing is raised twice. Without a
saved state (Redis lost it) it starts from the bay's last published ``alarms`` message (the shadow kept on
every instance), so the active list survives even then.

The owner also watches the bay's devices from the stream: a device whose ingest instance died sends nothing,
and nobody else would say so, so after ``stale_after_s`` (``offline_after_s``) plus a grace second without
data the owner publishes it stale (offline) itself, and the NO DATA technical alarm follows. The grace
lets a live ingest instance, which reports its own devices on time, go first.

Bays with a monitor attached to this instance are preferred: the instance takes them as soon as they are
free; others only once it has been up for a lease period (so at start-up each bay goes to the instance that
ingests it, and evaluation needs no cross-instance hop while Redis is healthy). An instance that cannot reach
Redis keeps evaluating the bays it owned (it alone has their state; a duplicate alarm is safer than a missed
one) and gives up a bay as soon as a renewal finds another owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter
from redis.exceptions import RedisError

from app.alarming import AlarmService
from app.alarms.model import AlarmInput, AlarmRecord, BayAlarmState, LevelState, Phase, Sample
from app.alarms.profile import Profile, is_known_param
from app.hub import Publishable
from app.scale.redis_hub import RedisHub
from app.wire import SERVER_MESSAGE, Alarms, BayOut, DeviceAlarmMsg, DeviceOut, Status, Vitals, Wave
from monitors.base import Item
from monitors.models import AlarmKind, DeviceAlarm, DeviceState, DeviceStatus, Priority, Quality, Reading

log = logging.getLogger(__name__)

_INPUTS: TypeAdapter[list[AlarmInput]] = TypeAdapter(list[AlarmInput])
#: Seconds past the stale/offline budgets before the owner reports a silent device itself.
WATCH_GRACE_S = 1.0
_COMMANDS_MAXLEN = 10_000

_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_SAVE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[2], ARGV[2]) return 1 end
return 0
"""


class SavedBay(BaseModel):
    """What an owner saves of a bay: the engine state and the inputs it has folded in."""

    owner: str
    seq: int  # last clinic stream seq fed into ``state``
    cmd: str  # last alarm-command id applied
    state: BayAlarmState


@dataclass
class _Device:
    bay: str
    state: str = "connecting"
    last_data: float = 0.0  # monotonic time this instance last read data of the device


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _cmd_key(entry_id: str) -> tuple[int, int]:
    ms, _, n = entry_id.partition("-")
    return int(ms), int(n or 0)


def items_of(msg: Publishable) -> list[Item]:
    """The device items behind a published message (what the alarm engine is fed with)."""
    if isinstance(msg, Vitals):
        return [
            Reading.model_construct(
                device_id=r.device_id,
                param=r.param,
                value=r.value,
                unit=r.unit,
                t_device=_dt(r.t),
                t_received=_dt(r.tr),
                quality=Quality(r.quality),
            )
            for r in msg.readings
        ]
    if isinstance(msg, Status):
        d = msg.device
        return [DeviceStatus(device_id=d.device_id, state=DeviceState(d.state), since=_dt(d.since), detail=d.detail)]
    if isinstance(msg, DeviceAlarmMsg):
        a = msg.alarm
        return [
            DeviceAlarm(
                device_id=a.device_id,
                code=a.code,
                priority=Priority(a.priority),
                text=a.text,
                t=_dt(a.t),
                alarm_kind=AlarmKind(a.alarm_kind),
                active=a.active,
            )
        ]
    return []


def shadow_state(fresh: BayAlarmState, bay: BayOut, profile: Profile) -> BayAlarmState:
    """A bay's alarm state as far as the live state tells (the owner's last ``alarms`` message, device states,
    active device alarms, latest numerics): enough for the API on a non-owner, and for a successor when no
    saved state exists. The level of an alarm whose condition is active is marked as holding, so a successor
    does not clear the alarm at its first evaluation and raise it again after the rule's delay; if the
    condition has in fact ended, the successor's first evaluation ends it as the owner would have. Baselines
    and persistence timers of conditions not yet alarming are not in the live state: they start again."""
    conditions: dict[str, dict[str, float]] = {}
    for da in bay.device_alarms:
        if da.active:
            conditions.setdefault(da.device_id, {})[da.code] = da.t
    samples = {
        v.param: Sample(
            value=None if v.quality == "invalid" else v.value, t=v.tr, questionable=v.quality == "questionable"
        )
        for v in bay.vitals
        if is_known_param(v.param)
    }
    rules = dict(fresh.rules)
    top = fresh.seq
    by_id = {r.id: r for r in profile.rules}
    for a in bay.alarms:
        rs = rules.get(a.rule_id)
        rule = by_id.get(a.rule_id)
        if rs is None or rule is None:
            continue
        if a.condition_active:
            holding = LevelState(
                running=True,
                elapsed=1e9,
                last=a.raised_at,
                asserted=True,
                count=1_000_000,
                applicable_since=a.raised_at,
            )
            levels = [
                holding if lvl.priority.value == a.priority else ls
                for lvl, ls in zip(rule.levels, rs.levels, strict=True)
            ]
            rs = rs.model_copy(update={"levels": levels})
        with contextlib.suppress(ValueError):
            top = max(top, int(a.alarm_id.rsplit("-", 1)[1]))
        record = AlarmRecord(
            alarm_id=a.alarm_id,
            rule_id=a.rule_id,
            row=a.row,
            category=AlarmKind(a.category),
            priority=Priority(a.priority),
            condition_priority=Priority(a.priority) if a.condition_active else None,
            text=a.text,
            values=dict(a.values),
            raised_at=a.raised_at,
            priority_since=a.priority_since,
            unacked_since=a.priority_since,
            acked_at=a.acknowledged_at,
            acked_by=a.acknowledged_by,
        )
        rules[a.rule_id] = rs.model_copy(update={"alarm": record})
    return fresh.model_copy(
        update={
            "rules": rules,
            "seq": top,
            "phase": Phase(bay.phase) if bay.phase else fresh.phase,
            "audio_paused_until": bay.audio_paused_until,
            "devices": {d.device_id: DeviceState(d.state) for d in bay.devices},
            "conditions": conditions,
            "samples": samples,
            "last_update": {k: v.t for k, v in samples.items()},
            "last_valid": {k: v.t for k, v in samples.items() if v.value is not None},
        }
    )


class AlarmOwnership:
    """Leases, inputs and state hand-over for the bays' alarm evaluation (see the module docstring)."""

    def __init__(
        self,
        hub: RedisHub,
        alarms: AlarmService,
        *,
        preferred: Iterable[str],
        lease_s: float,
        stale_after_s: float,
        offline_after_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.alarms = alarms
        self.redis: Any = hub.redis
        self.keys = hub.keys
        self.me = hub.instance_id
        self._preferred = set(preferred)
        self._lease_ms = int(lease_s * 1000)
        self._period = min(1.0, lease_s / 3)
        self._stale = stale_after_s
        self._offline = offline_after_s
        self._mono = monotonic
        self._started = monotonic()
        self.owned: set[str] = set()
        self._fed: dict[str, int] = {}
        self._cmd_applied: dict[str, str] = {}
        self._cmd_pos = "0-0"
        self._adopting: dict[str, list[tuple[str, dict[str, str]]]] = {}
        self._saved: dict[str, BayAlarmState] = {}
        self._devices: dict[str, _Device] = {}
        self._renew = self.redis.register_script(_RENEW_LUA)
        self._release = self.redis.register_script(_RELEASE_LUA)
        self._save = self.redis.register_script(_SAVE_LUA)
        self._tasks: list[asyncio.Task[None]] = []
        self._failing = False
        #: (bay, monotonic time) of every bay this instance took over (logged too).
        self.acquired: list[tuple[str, float]] = []

    # ---- AlarmGate -------------------------------------------------------------------------------

    def owns(self, bay: str) -> bool:
        """Whether this instance evaluates the bay now."""
        return bay in self.owned

    def forward(self, bay: str, inputs: Sequence[AlarmInput], *, manual_phase: bool = False) -> None:
        """Append inputs for another instance's bay to the command stream (in order with this instance's
        published messages)."""
        fields = {
            "bay": bay,
            "inputs": _INPUTS.dump_json(list(inputs)).decode(),
            "manual": "1" if manual_phase else "0",
            "from": self.me,
        }
        stream = self.keys.commands

        async def op(pipe: Any) -> None:
            pipe.xadd(stream, fields, maxlen=_COMMANDS_MAXLEN, approximate=True)

        self.hub.enqueue(op)

    def emitting(self, bay: str, state: BayAlarmState) -> None:
        """Save the state before the ``alarms`` message it produced is published."""
        if bay in self.owned:
            self._save_state(bay, state)

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Take the free preferred bays now (so start-up evaluates them here at once), then keep leases."""
        last = await self.redis.xrevrange(self.keys.commands, count=1)
        self._cmd_pos = last[0][0] if last else "0-0"
        self.hub.listeners.append(self.on_message)
        self.hub.join_listeners.append(self.sync_from_live)
        self.sync_from_live()
        await self._round()
        self._tasks = [
            asyncio.create_task(self._lease_loop(), name="alarms:leases"),
            asyncio.create_task(self._command_loop(), name="alarms:commands"),
        ]

    async def stop(self) -> None:
        """Save and release every owned bay (a successor takes over at once), stop the tasks."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(2.0):
                for bay in sorted(self.owned):
                    self._save_state(bay, self.alarms.states[bay])
                await self.hub.wait_folded(1.0)
                for bay in sorted(self.owned):
                    await self._release(keys=[self.keys.lease(bay)], args=[self.me])
        self.owned.clear()

    # ---- leases ----------------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self._period)
            try:
                await self._round()
                if self._failing:
                    log.warning("alarms: Redis reachable again; leases renewed")
                    self._failing = False
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as e:
                # Back from an outage, give the preferred instances a lease period to take their bays again
                # (if Redis lost the leases) before contesting the others.
                self._started = self._mono()
                if not self._failing:
                    log.warning(
                        "alarms: cannot renew leases (%s); still evaluating the %d owned bays", e, len(self.owned)
                    )
                    self._failing = True
            except Exception:  # a bug here must not stop renewals (the bays would be evaluated twice)
                log.exception("alarms: lease round failed")
            try:
                self._watch()
            except Exception:
                log.exception("alarms: device watch failed")

    async def _round(self) -> None:
        """Renew owned leases, take free bays, save changed states."""
        bays = sorted(self.alarms.states)
        async with self.redis.pipeline(transaction=False) as pipe:
            for bay in bays:
                if bay in self.owned:
                    await self._renew(keys=[self.keys.lease(bay)], args=[self.me, str(self._lease_ms)], client=pipe)
                else:
                    pipe.exists(self.keys.lease(bay))
            results = await pipe.execute()
        settled = self._mono() - self._started > self._lease_ms / 1000
        for bay, res in zip(bays, results, strict=True):
            if bay in self.owned:
                if not res:
                    holder = await self.redis.get(self.keys.lease(bay))
                    if holder is None and await self._acquire(bay):
                        continue
                    log.warning("alarms: lease of bay %s lost to %s; no longer evaluating it here", bay, holder)
                    self.owned.discard(bay)
            elif (
                not res
                and (bay in self._preferred or (settled and not await self._wanted_elsewhere(bay)))
                and await self._acquire(bay)
            ):
                await self._adopt(bay)
        for bay in sorted(self.owned):
            state = self.alarms.states[bay]
            if self._saved.get(bay) is not state:
                self._save_state(bay, state)
        await self._prefer()

    async def _prefer(self) -> None:
        """Say which bays have their monitor here; hand bays owned here whose monitor is elsewhere back to that
        instance (it started later, or came back): its evaluation then needs no cross-instance hop."""
        foreign = sorted(self.owned - self._preferred)
        async with self.redis.pipeline(transaction=False) as pipe:
            for bay in sorted(self._preferred):
                # Expires with the lease: a dead instance's bays are free for anyone after the same lease time.
                pipe.set(self.keys.prefer(bay), self.me, px=self._lease_ms)
            for bay in foreign:
                pipe.get(self.keys.prefer(bay))
            results = await pipe.execute()
        for bay, holder in zip(foreign, results[len(self._preferred) :], strict=True):
            if holder is None or holder == self.me:
                continue
            log.info("alarms: handing bay %s over to %s, which ingests its monitor", bay, holder)
            self._save_state(bay, self.alarms.states[bay])  # then released, in this order, by the one writer
            self.owned.discard(bay)
            self.hub.enqueue(self._release_op(bay))

    def _release_op(self, bay: str) -> Callable[[Any], Awaitable[None]]:
        keys, args = [self.keys.lease(bay)], [self.me]

        async def op(pipe: Any) -> None:
            await self._release(keys=keys, args=args, client=pipe)

        return op

    async def _wanted_elsewhere(self, bay: str) -> bool:
        """Whether a live instance ingests the bay's monitor (it takes the bay itself, at its next round)."""
        holder = await self.redis.get(self.keys.prefer(bay))
        return holder is not None and holder != self.me

    async def _acquire(self, bay: str) -> bool:
        got = await self.redis.set(self.keys.lease(bay), self.me, nx=True, px=self._lease_ms)
        return bool(got)

    async def _adopt(self, bay: str) -> None:
        """Take over a bay's evaluation: saved state (else the published shadow), then what came after it."""
        self._adopting[bay] = []
        try:
            raw = await self.redis.get(self.keys.alarm_state(bay))
            saved: SavedBay | None = None
            if raw is not None:
                try:
                    saved = SavedBay.model_validate_json(raw)
                except ValueError:
                    log.exception("alarms: saved state of bay %s unreadable; starting from its active list", bay)
            profile_id = self.alarms.engine.new_state().profile_id
            if saved is not None and saved.state.profile_id == profile_id:
                state, fed, cmd, source = saved.state, saved.seq, saved.cmd, f"state saved by {saved.owner}"
            else:
                state, fed, cmd, source = self.alarms.states[bay], self.hub.seq, "0-0", "its last alarms message"
            self.alarms.states[bay] = state
            self._fed[bay] = fed
            self._cmd_applied[bay] = cmd
            self.owned.add(bay)
            self.acquired.append((bay, self._mono()))
            refed = 0
            for text in self.hub.texts_after(fed, bay):
                msg = SERVER_MESSAGE.validate_json(text)
                if isinstance(msg, Vitals | Status | DeviceAlarmMsg):
                    self._feed(msg)
                    refed += 1
            entries = await self.redis.xrange(self.keys.commands, "-" if cmd == "0-0" else f"({cmd}", "+")
            deferred = self._adopting.pop(bay, [])
            for entry_id, fields in [*entries, *deferred]:
                if fields.get("bay") == bay:
                    self._command(entry_id, fields)
        finally:
            self._adopting.pop(bay, None)
        log.info(
            "alarms: instance %s now evaluates bay %s (from %s, %d active; %d stream entries re-fed)",
            self.me,
            bay,
            source,
            len(self.alarms.active(bay)),
            refed,
        )
        self.alarms.republish(bay)

    def _save_state(self, bay: str, state: BayAlarmState) -> None:
        self._saved[bay] = state
        record = SavedBay(
            owner=self.me, seq=self._fed.get(bay, 0), cmd=self._cmd_applied.get(bay, "0-0"), state=state
        ).model_dump_json()
        keys = [self.keys.lease(bay), self.keys.alarm_state(bay)]
        me = self.me

        async def op(pipe: Any) -> None:
            await self._save(keys=keys, args=[me, record], client=pipe)

        self.hub.enqueue(op)

    # ---- inputs ------------------------------------------------------------------------------------

    def on_message(self, msg: Publishable) -> None:
        """Every stream message, in order: track devices; feed owned bays; shadow the others' alarms."""
        bay = msg.bay
        now = self._mono()
        if isinstance(msg, Vitals | Wave):
            dev = self._devices.setdefault(msg.device_id, _Device(bay))
            dev.bay = bay
            dev.last_data = now
            if dev.state in ("connecting", "offline"):
                dev.state = "online"  # data flows: the ingest side reports online with it
        elif isinstance(msg, Status):
            dev = self._devices.setdefault(msg.device.device_id, _Device(bay, last_data=now))
            dev.bay = bay
            if msg.device.state != dev.state and msg.device.state in ("online", "connecting"):
                dev.last_data = now
            dev.state = msg.device.state
        if bay in self.owned:
            if isinstance(msg, Vitals | Status | DeviceAlarmMsg):
                self._feed(msg)
        elif isinstance(msg, Alarms) and bay in self.alarms.states:
            self._shadow(bay)

    def sync_from_live(self) -> None:
        """Devices and other instances' alarm lists as the hub's live state has them (after a join)."""
        now = self._mono()
        for b in self.hub.live.bays_out():
            for d in b.devices:
                dev = self._devices.setdefault(d.device_id, _Device(b.bay, state=d.state, last_data=now))
                dev.bay, dev.state = b.bay, d.state
            if b.bay in self.alarms.states and b.bay not in self.owned:
                self._shadow(b.bay, b)

    def _shadow(self, bay: str, out: BayOut | None = None) -> None:
        """A non-owned bay's state follows the live state (its owner's alarms message just came in)."""
        if out is None:
            found = self.hub.live.bays_out([bay])
            if not found:
                return
            out = found[0]
        self.alarms.states[bay] = shadow_state(self.alarms.engine.new_state(), out, self.alarms.engine.profile)

    def _feed(self, msg: Vitals | Status | DeviceAlarmMsg) -> None:
        self._fed[msg.bay] = msg.seq
        self.alarms.on_items(msg.bay, items_of(msg))

    async def _command_loop(self) -> None:
        while True:
            try:
                got = await self.redis.xread({self.keys.commands: self._cmd_pos}, count=100, block=1000)
            except (RedisError, OSError):
                await asyncio.sleep(1.0)  # the lease loop logs the outage
                continue
            for _stream, entries in got or ():
                for entry_id, fields in entries:
                    self._cmd_pos = entry_id
                    bay = fields.get("bay", "")
                    if bay in self._adopting:
                        self._adopting[bay].append((entry_id, fields))
                    elif bay in self.owned:
                        self._command(entry_id, fields)

    def _command(self, entry_id: str, fields: dict[str, str]) -> None:
        bay = fields["bay"]
        if _cmd_key(entry_id) <= _cmd_key(self._cmd_applied.get(bay, "0-0")):
            return
        self._cmd_applied[bay] = entry_id
        try:
            inputs = _INPUTS.validate_json(fields["inputs"])
        except ValueError:
            log.exception("alarms: unreadable command %s for bay %s", entry_id, bay)
            return
        if fields.get("manual") == "1":
            self.alarms.phase_source.pop(bay, None)  # a person or session set the phase on another instance
        try:
            self.alarms.apply(bay, inputs)
        except Exception:  # like the pipeline: one bad evaluation must not stop the command stream
            log.exception("alarms: command %s for bay %s failed", entry_id, bay)

    # ---- device watch ------------------------------------------------------------------------------

    def _watch(self) -> None:
        """Report silent devices of owned bays stale/offline (their ingest instance may have died)."""
        now = self._mono()
        for device_id, dev in self._devices.items():
            if dev.bay not in self.owned:
                continue
            silence = now - dev.last_data
            new: str | None = None
            if dev.state in ("online", "stale", "connecting") and silence > self._offline + WATCH_GRACE_S:
                new = "offline"
            elif dev.state == "online" and silence > self._stale + WATCH_GRACE_S:
                new = "stale"
            if new is None:
                continue
            dev.state = new
            detail = f"no data for {silence:.0f} s (seen by {self.me}, owner of the bay's alarms)"
            log.info("device %s: %s (%s)", device_id, new, detail)
            self.hub.publish(
                Status(
                    seq=0,
                    t=0,
                    bay=dev.bay,
                    device=DeviceOut(device_id=device_id, state=new, since=time.time(), detail=detail),
                )
            )
