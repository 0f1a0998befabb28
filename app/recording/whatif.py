"""What-if review: re-run a recorded session through the alarm engine with another profile or thresholds.

``what_if(rec, profile)`` is pure (no clock, no I/O): it feeds a fresh ``AlarmEngine`` the inputs the live
engine was fed, in time order and at their recorded times, and lists the alarms that would have fired
beside the alarms that did (``rec.alarm_events``), matched by rule within ``window_s`` (default ±60 s).

The inputs, as ``app/alarming.py`` and ``app/sessions/service.py`` (``_after``) build them live:

- readings, one ``ReadingsInput`` per device and observation time (one monitor message / one NIBP
  measurement), at the time the engine saw them (see ``clock_basis``);
- device connection changes (``DeviceStatusInput``) and device-reported alarm codes
  (``DeviceConditionInput``);
- the session's phase changes, its recorded baselines (``BaselineInput`` for SBP, DBP, HR, SpO₂) and its
  charted RASS / MOAA/S (``ChartInput``), only when the entry is the latest sedation score in force after
  it was charted (a late or corrected older score does not reach the alarms, as live);
- the recorded acknowledgements, per rule (an unacknowledged latched alarm would otherwise stay up and
  hide every later occurrence of its rule);
- a ``Tick`` in every second of session time without any other input, so that delays and staleness run
  out without new data (as the live one-second tick does).

With the profile that was active and no overrides it reproduces the recorded alarms (the self-check; see
tests/recording/test_whatif.py). Threshold changes are ``LevelOverride``s applied to a copy of a profile
by ``apply_overrides`` and validated by the profile's own validators.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.alarms.engine import AlarmEngine
from app.alarms.model import (
    AckInput,
    AlarmEvent,
    AlarmInput,
    BaselineInput,
    ChartInput,
    DeviceConditionInput,
    DeviceStatusInput,
    EventKind,
    PhaseInput,
    ReadingsInput,
    Scale,
    Tick,
    to_datetime,
)
from app.alarms.overrides import LevelOverride, value_leaves
from app.alarms.profile import (
    AgeCond,
    AllCond,
    Condition,
    DeviceCond,
    InvalidCond,
    LinkCond,
    Profile,
    RuleRef,
    ValueCond,
    param_label,
    rank,
)
from app.recording.model import SessionRecording
from app.sessions import workflow
from app.sessions.model import BaselineRecorded, ChartEntry, PhaseChanged, SedationItem
from monitors import parameters
from monitors.models import Priority, Reading

#: A recorded and a what-if alarm of the same rule raised this close together are "the same alarm".
MATCH_WINDOW_S = 60.0
#: Device clocks that stay within this many seconds before receive time are taken as the engine's clock.
_LAG_S = 10.0
_EPS = 1e-3

ClockBasis = Literal["received", "device"]
Match = Literal["both", "only_recorded", "only_whatif"]


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---- threshold overrides -------------------------------------------------------------------------------


class WhatIfRequest(_In):
    """A what-if run: a profile (default: the server's) and threshold changes applied to a copy of it."""

    profile: str | None = Field(
        default=None, max_length=200, description="Profile name (app/alarms/profiles/); default the active one"
    )
    overrides: list[LevelOverride] = Field(default_factory=list, max_length=200)


# ---- profile description (for a UI offering the overrides) ---------------------------------------------


class LimitOut(_Out):
    """One threshold of a level: ``param op limit`` (absolute or relative to the baseline)."""

    param: str
    label: str
    unit: str
    op: str
    value: float | None
    baseline_delta: float | None
    baseline_pct: float | None
    hysteresis: float


class LevelOut(_Out):
    """One level of a rule."""

    index: int
    priority: Priority
    delay_s: float
    phases: list[str] | None
    text: str | None
    condition: str  # the whole condition in words
    limits: list[LimitOut]  # the thresholds an override may change (``param`` picks one of several)


class RuleOut(_Out):
    """One rule with its levels."""

    id: str
    row: str
    label: str
    category: str
    phases: list[str]
    latch: list[Priority]
    source: str
    levels: list[LevelOut]


class ProfileOut(_Out):
    """An alarm profile's rules, as a UI needs them to offer threshold and delay changes."""

    id: str
    title: str
    version: int
    rules: list[RuleOut]
    available: list[str] = Field(default_factory=list)  # other profiles a what-if may name


def _limit_text(c: ValueCond) -> str:
    label = param_label(c.param)
    if c.value is not None:
        return f"{label} {c.op} {c.value:g}"
    if c.baseline_delta is not None:
        return f"{label} {c.op} baseline {c.baseline_delta:+g}"
    return f"{label} {c.op} baseline {c.baseline_pct or 0:+g} %"


def describe_condition(c: Condition) -> str:
    """A condition tree in words, e.g. ``any(NIBP sys >= 160, NIBP dia >= 100)``."""
    if isinstance(c, ValueCond):
        return _limit_text(c)
    if isinstance(c, InvalidCond):
        return f"{param_label(c.invalid)} invalid"
    if isinstance(c, AgeCond):
        which = ", ".join(param_label(p) for p in c.params)
        return f"no {'valid ' if c.valid_only else ''}{which} for > {c.age_s:g} s"
    if isinstance(c, DeviceCond):
        return "device reports " + " / ".join(c.device)
    if isinstance(c, LinkCond):
        return "a device is " + " / ".join(s.value for s in c.link)
    if isinstance(c, RuleRef):
        return f"rule {c.rule} at {c.min_priority.value} or higher"
    if isinstance(c, AllCond):
        return "all(" + ", ".join(describe_condition(x) for x in c.all) + ")"
    return "any(" + ", ".join(describe_condition(x) for x in c.any) + ")"


def _unit(param: str) -> str:
    p = parameters.CATALOGUE.get(param)
    return "" if p is None else p.ucum


def profile_view(profile: Profile, available: Iterable[str] = ()) -> ProfileOut:
    """The rules and levels of a profile with their limits and delays."""
    rules = []
    for r in profile.rules:
        levels = []
        for i, lvl in enumerate(r.levels):
            limits = [
                LimitOut(
                    param=leaf.param,
                    label=param_label(leaf.param),
                    unit=_unit(leaf.param),
                    op=leaf.op,
                    value=leaf.value,
                    baseline_delta=leaf.baseline_delta,
                    baseline_pct=leaf.baseline_pct,
                    hysteresis=leaf.hysteresis,
                )
                for leaf in value_leaves(lvl.when)
                if leaf.describe
            ]
            levels.append(
                LevelOut(
                    index=i,
                    priority=lvl.priority,
                    delay_s=lvl.delay_s,
                    phases=None if lvl.phases is None else [p.value for p in lvl.phases],
                    text=lvl.text,
                    condition=describe_condition(lvl.when),
                    limits=limits,
                )
            )
        rules.append(
            RuleOut(
                id=r.id,
                row=r.row,
                label=r.label,
                category=r.category.value,
                phases=[p.value for p in r.phases],
                latch=list(r.latch),
                source=r.source,
                levels=levels,
            )
        )
    return ProfileOut(
        id=profile.id, title=profile.title, version=profile.version, rules=rules, available=list(available)
    )


# ---- results -------------------------------------------------------------------------------------------


class AckOut(_Out):
    """An acknowledgement of an alarm."""

    t: datetime
    user: str | None
    time_to_ack_s: float | None


class Occurrence(_Out):
    """One alarm from raised to cleared (``cleared_at`` None: still active when the session ended)."""

    rule_id: str
    row: str | None
    label: str
    category: str | None
    raised_at: datetime
    offset_s: float  # seconds after the session start
    priority: Priority  # when raised
    max_priority: Priority
    text: str  # when raised
    values: dict[str, float | None]  # when raised
    cleared_at: datetime | None
    duration_s: float | None
    acks: list[AckOut]
    escalated_to: list[str]
    carried_over: bool = False  # raised before the session started (no raised event inside it)


class MatchRow(_Out):
    """One line of the side-by-side table."""

    match: Match
    rule_id: str
    label: str
    t: float  # Unix seconds of the (earlier) raise: where a replay should seek
    offset_s: float  # seconds after the session start
    dt_s: float | None  # what-if raised minus recorded raised (both only)
    recorded: Occurrence | None
    whatif: Occurrence | None


class MatchCounts(_Out):
    """How many rows of each kind."""

    both: int
    only_recorded: int
    only_whatif: int


class WhatIfResult(_Out):
    """The alarms that would have fired beside those that did."""

    session_id: str
    bay: str
    start: datetime
    end: datetime
    profile_id: str
    clock: ClockBasis  # which reading timestamp the engine's clock followed
    window_s: float
    inputs: int  # engine inputs fed, ticks excluded
    ticks: int
    recorded: list[Occurrence]
    whatif: list[Occurrence]
    rows: list[MatchRow]
    counts: MatchCounts


# ---- feeding the engine --------------------------------------------------------------------------------

#: Order of inputs that share a time: the device's state first, then its data, the session, the user.
_STATUS, _CONDITION, _READINGS, _SESSION, _ACK = range(5)


def clock_basis(readings: Sequence[Reading]) -> ClockBasis:
    """Which reading time to run the engine on.

    Live, the engine's clock is the server's receive time, except for a simulated bay running faster than
    real time, whose alarms are timed on the simulated device clock (app/main.py ``alarms.clocks``). So:
    ``device`` when device time runs much faster than receive time (such a bay, received in real time), or
    when every reading arrived within ``_LAG_S`` after its device time (a device clock in step with the
    server, e.g. a simulated bay recorded by ``record_simulated_session``: device time is then the exact
    engine time, receive time is up to one simulation step late); otherwise ``received`` (a device whose
    clock is off: the engine never used it).
    """
    if len(readings) < 2:
        return "received"
    dev = (readings[-1].t_device - readings[0].t_device).total_seconds()
    rec = (max(r.t_received for r in readings) - min(r.t_received for r in readings)).total_seconds()
    if dev > 2.0 * rec + 1.0:
        return "device"
    lags = [(r.t_received - r.t_device).total_seconds() for r in readings]
    return "device" if min(lags) >= -_EPS and max(lags) <= _LAG_S else "received"


def _session_inputs(rec: SessionRecording) -> list[tuple[float, int, AlarmInput]]:
    """Phases, baselines and sedation scores as the session service passed them to the engine."""
    out: list[tuple[float, int, AlarmInput]] = []
    state = workflow.SessionState(id=rec.session.id)
    for e in sorted(rec.session.events, key=lambda e: e.seq):
        state = workflow.evolve(state, e)
        t = e.t.timestamp()
        if isinstance(e, PhaseChanged):
            out.append((t, _SESSION, PhaseInput(phase=e.to_phase)))
        elif isinstance(e, BaselineRecorded):
            for key, param in (("sbp", "nibp_sys"), ("dbp", "nibp_dia"), ("hr", "hr"), ("spo2", "spo2")):
                value = getattr(e.vitals, key)
                if value is not None:
                    out.append((t, _SESSION, BaselineInput(param=param, value=value, user=e.user)))
        elif isinstance(e, ChartEntry) and isinstance(e.item, SedationItem) and not state.final:
            latest = [c for c in state.effective_chart() if isinstance(c.item, SedationItem)]
            if latest and latest[-1].seq == e.seq:
                if e.item.rass is not None:
                    out.append((t, _SESSION, ChartInput(scale=Scale.RASS, value=e.item.rass, user=e.user)))
                if e.item.moaas is not None:
                    out.append((t, _SESSION, ChartInput(scale=Scale.MOAAS, value=e.item.moaas, user=e.user)))
    return out


def recorded_inputs(rec: SessionRecording, basis: ClockBasis | None = None) -> list[tuple[float, AlarmInput]]:
    """Every recorded engine input of [rec.start, rec.end] except ticks, in the order the engine is fed
    them (Unix seconds)."""
    basis = basis or clock_basis(rec.readings)
    feed: list[tuple[float, int, int, AlarmInput]] = []
    groups: dict[tuple[str, datetime], list[Reading]] = {}
    for r in rec.readings:
        groups.setdefault((r.device_id, r.t_device), []).append(r)
    for (_, t_dev), rs in groups.items():
        t = t_dev.timestamp() if basis == "device" else max(r.t_received for r in rs).timestamp()
        feed.append((t, _READINGS, len(feed), ReadingsInput.from_readings(rs)))
    for st in rec.statuses:
        feed.append((st.since.timestamp(), _STATUS, len(feed), DeviceStatusInput.from_status(st)))
    for a in rec.device_alarms:
        feed.append((a.t.timestamp(), _CONDITION, len(feed), DeviceConditionInput.from_alarm(a)))
    for t, order, inp in _session_inputs(rec):
        feed.append((t, order, len(feed), inp))
    for e in rec.alarm_events:
        if e.kind is EventKind.ACKNOWLEDGED and e.rule_id is not None:
            feed.append((e.t.timestamp(), _ACK, len(feed), AckInput(rule_id=e.rule_id, user=e.user or "unknown")))
    lo, hi = rec.start.timestamp(), rec.end.timestamp()
    feed.sort(key=lambda x: (x[0], x[1], x[2]))
    return [(t, inp) for t, _, _, inp in feed if lo <= t <= hi]


def run_engine(
    profile: Profile, inputs: Sequence[tuple[float, AlarmInput]], start: float, end: float
) -> tuple[list[AlarmEvent], int]:
    """Evaluate ``inputs`` (sorted by time) on a fresh engine, with a ``Tick`` at each whole second of
    [start, end] that follows a second without any input (every evaluation advances the timers, so a tick
    between 1 Hz readings would change nothing and double the work).

    Returns the events and the number of ticks.
    """
    engine = AlarmEngine(profile)
    state = engine.new_state()
    events: list[AlarmEvent] = []
    times = [t for t, _ in inputs]
    ticks = 0
    i = 0
    last = start
    for k in range(max(0, int(end - start)) + 1):
        tick_t = start + k
        j = bisect.bisect_right(times, tick_t, lo=i)  # inputs up to and including this second first
        for t, inp in inputs[i:j]:
            state, evs = engine.evaluate(state, inp, to_datetime(t))
            events.extend(evs)
            last = t
        i = j
        if k > 0 and tick_t - last >= 1.0 - 1e-6:
            state, evs = engine.evaluate(state, Tick(), to_datetime(tick_t))
            events.extend(evs)
            last = tick_t
            ticks += 1
    for t, inp in inputs[i:]:  # after the last whole second of the session
        state, evs = engine.evaluate(state, inp, to_datetime(t))
        events.extend(evs)
    return events, ticks


# ---- alarm occurrences and matching --------------------------------------------------------------------


class _Open:
    """An occurrence being assembled from its events."""

    def __init__(self, e: AlarmEvent, label: str, carried_over: bool) -> None:
        assert e.rule_id is not None and e.priority is not None
        self.rule_id = e.rule_id
        self.row = e.row
        self.label = label
        self.category = None if e.category is None else e.category.value
        self.raised_at = e.t
        self.priority = e.priority
        self.max_priority = e.priority
        self.text = e.text
        self.values = dict(e.values)
        self.cleared_at: datetime | None = None
        self.acks: list[AckOut] = []
        self.escalated_to: list[str] = []
        self.carried_over = carried_over

    def out(self, start: datetime) -> Occurrence:
        return Occurrence(
            rule_id=self.rule_id,
            row=self.row,
            label=self.label,
            category=self.category,
            raised_at=self.raised_at,
            offset_s=round((self.raised_at - start).total_seconds(), 3),
            priority=self.priority,
            max_priority=self.max_priority,
            text=self.text,
            values=self.values,
            cleared_at=self.cleared_at,
            duration_s=None
            if self.cleared_at is None
            else round((self.cleared_at - self.raised_at).total_seconds(), 3),
            acks=self.acks,
            escalated_to=self.escalated_to,
            carried_over=self.carried_over,
        )


def occurrences(
    events: Iterable[AlarmEvent], start: datetime, labels: dict[str, str] | None = None
) -> list[Occurrence]:
    """Alarms from raised to cleared, from an alarm event log (in time order), oldest first.

    Grouped per rule (one alarm per rule at a time): alarm ids restart when a server restarts.
    """
    labels = labels or {}
    open_: dict[str, _Open] = {}
    done: list[_Open] = []
    for e in events:
        if e.rule_id is None or e.priority is None or e.kind is EventKind.CONFIRMATION_REQUESTED:
            continue  # audio events; repeat-measurement requests are not alarms
        cur = open_.get(e.rule_id)
        if e.kind is EventKind.RAISED or cur is None:
            if cur is not None:  # a raise without a clear (lost event): close the previous one here
                done.append(cur)
            cur = open_[e.rule_id] = _Open(e, labels.get(e.rule_id, e.rule_id), e.kind is not EventKind.RAISED)
        if rank(e.priority) > rank(cur.max_priority):
            cur.max_priority = e.priority
        if e.kind is EventKind.ACKNOWLEDGED:
            cur.acks.append(AckOut(t=e.t, user=e.user, time_to_ack_s=e.time_to_ack_s))
        elif e.kind is EventKind.ESCALATED and e.notify:
            cur.escalated_to.append(e.notify)
        elif e.kind is EventKind.CLEARED:
            cur.cleared_at = e.t
            done.append(open_.pop(e.rule_id))
    done.extend(open_.values())
    done.sort(key=lambda o: (o.raised_at, o.rule_id))
    return [o.out(start) for o in done]


def match(
    recorded: Sequence[Occurrence], whatif: Sequence[Occurrence], start: datetime, window_s: float = MATCH_WINDOW_S
) -> list[MatchRow]:
    """Pair recorded and what-if alarms of the same rule raised within ``window_s`` (closest pairs first)."""
    pairs = sorted(
        (
            (abs((w.raised_at - r.raised_at).total_seconds()), i, j)
            for i, r in enumerate(recorded)
            for j, w in enumerate(whatif)
            if r.rule_id == w.rule_id and abs((w.raised_at - r.raised_at).total_seconds()) <= window_s
        ),
    )
    used_r: set[int] = set()
    used_w: set[int] = set()
    rows: list[MatchRow] = []

    def row(kind: Match, r: Occurrence | None, w: Occurrence | None) -> MatchRow:
        first = min(o.raised_at for o in (r, w) if o is not None)
        some = r if r is not None else w
        assert some is not None
        return MatchRow(
            match=kind,
            rule_id=some.rule_id,
            label=(w or some).label,
            t=first.timestamp(),
            offset_s=round((first - start).total_seconds(), 3),
            dt_s=None if r is None or w is None else round((w.raised_at - r.raised_at).total_seconds(), 3),
            recorded=r,
            whatif=w,
        )

    for _, i, j in pairs:
        if i in used_r or j in used_w:
            continue
        used_r.add(i)
        used_w.add(j)
        rows.append(row("both", recorded[i], whatif[j]))
    rows += [row("only_recorded", r, None) for i, r in enumerate(recorded) if i not in used_r]
    rows += [row("only_whatif", None, w) for j, w in enumerate(whatif) if j not in used_w]
    rows.sort(key=lambda x: (x.t, x.rule_id, x.match))
    return rows


def what_if(
    rec: SessionRecording, profile: Profile, *, window_s: float = MATCH_WINDOW_S, basis: ClockBasis | None = None
) -> WhatIfResult:
    """Re-run the recorded session through a fresh engine with ``profile``; compare with the recording."""
    basis = basis or clock_basis(rec.readings)
    inputs = recorded_inputs(rec, basis)
    start, end = rec.start.timestamp(), rec.end.timestamp()
    events, ticks = run_engine(profile, inputs, start, end)
    labels = {r.id: r.label for r in profile.rules}
    recorded = occurrences((e for e in rec.alarm_events if rec.start <= e.t <= rec.end), rec.start, labels)
    whatif = occurrences(events, rec.start, labels)
    rows = match(recorded, whatif, rec.start, window_s)
    return WhatIfResult(
        session_id=rec.session.id,
        bay=rec.bay,
        start=rec.start,
        end=rec.end,
        profile_id=profile.id,
        clock=basis,
        window_s=window_s,
        inputs=len(inputs),
        ticks=ticks,
        recorded=recorded,
        whatif=whatif,
        rows=rows,
        counts=MatchCounts(
            both=sum(r.match == "both" for r in rows),
            only_recorded=sum(r.match == "only_recorded" for r in rows),
            only_whatif=sum(r.match == "only_whatif" for r in rows),
        ),
    )
