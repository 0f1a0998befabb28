"""The alarm engine as it was before the copy-on-write / compiled-profile optimisation (reference only).

A verbatim copy of app/alarms/engine.py (straightforward: copies the whole state and walks every
condition tree on each evaluation). tests/alarms/test_equivalence.py checks that the optimised engine
gives the same events and the same states on random input streams. Do not use outside tests.
"""

from __future__ import annotations

from datetime import datetime
from statistics import median

from app.alarms.model import (
    SCALE_LABEL,
    AckInput,
    ActiveAlarm,
    AlarmEvent,
    AlarmInput,
    AlarmRecord,
    AudioPauseInput,
    AudioResumeInput,
    BaselineInput,
    BayAlarmState,
    ChartInput,
    DeviceConditionInput,
    DeviceStatusInput,
    EventKind,
    LevelState,
    Phase,
    PhaseInput,
    ReadingInput,
    ReadingsInput,
    RuleState,
    Sample,
    Tick,
    to_datetime,
)
from app.alarms.profile import (
    AgeCond,
    AllCond,
    AnyCond,
    Condition,
    DeviceCond,
    InvalidCond,
    Level,
    LinkCond,
    Profile,
    Rule,
    RuleRef,
    ValueCond,
    is_continuous,
    is_known_param,
    leaves,
    param_label,
    rank,
)
from monitors.models import Priority, Quality

_EPS = 1e-6  # float slack on time comparisons
_OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}

#: (holds: True / False / None = unknown, data valid until (None = no limit), newest sample time used)
_Eval = tuple[bool | None, float | None, float | None]


def _fmt(v: float) -> str:
    return f"{round(v, 1):g}"


def _compare(v: float, op: str, limit: float) -> bool:
    if op == "<":
        return v < limit
    if op == "<=":
        return v <= limit
    if op == ">":
        return v > limit
    return v >= limit


def _min_until(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def new_state(profile: Profile) -> BayAlarmState:
    """The state of a bay before any input."""
    return BayAlarmState(
        profile_id=profile.id,
        rules={r.id: RuleState(levels=[LevelState() for _ in r.levels]) for r in profile.rules},
    )


def evaluate(
    profile: Profile, state: BayAlarmState, inp: AlarmInput, now: datetime
) -> tuple[BayAlarmState, list[AlarmEvent]]:
    """Apply one input at ``now``; return the new state and the events, in order. ``state`` is untouched."""
    if state.profile_id != profile.id:
        raise ValueError(f"state belongs to profile {state.profile_id!r}, not {profile.id!r}")
    s = _copy(state)
    t = now.timestamp()
    if s.now is not None and t < s.now:
        t = s.now
    s.now = t
    step = _Step(profile, s, t)
    step.run(inp)
    return s, step.events


def _copy(state: BayAlarmState) -> BayAlarmState:
    """A copy the step may change: containers are new, values replaced rather than mutated are shared."""
    return state.model_copy(
        update={
            "samples": dict(state.samples),  # Sample objects are replaced, never changed
            "last_valid": dict(state.last_valid),
            "last_update": dict(state.last_update),
            "baseline_samples": dict(state.baseline_samples),  # lists are replaced, never appended to
            "baselines": dict(state.baselines),
            "manual_baselines": dict(state.manual_baselines),
            "devices": dict(state.devices),
            "conditions": {d: dict(codes) for d, codes in state.conditions.items()},
            "rules": {k: _copy_rule(rs) for k, rs in state.rules.items()},
        }
    )


def _copy_rule(rs: RuleState) -> RuleState:
    a = rs.alarm
    if a is not None:
        a = a.model_copy(update={"escalated": list(a.escalated), "notified": list(a.notified)})
    return rs.model_copy(update={"levels": [ls.model_copy() for ls in rs.levels], "alarm": a})


def active_alarms(state: BayAlarmState) -> list[ActiveAlarm]:
    """The alarms to show, highest priority first, then oldest first."""
    out = []
    for rs in state.rules.values():
        a = rs.alarm
        if a is None:
            continue
        out.append(
            ActiveAlarm(
                alarm_id=a.alarm_id,
                rule_id=a.rule_id,
                row=a.row,
                priority=a.priority,
                category=a.category,
                text=a.text,
                values=a.values,
                raised_at=to_datetime(a.raised_at),
                priority_since=to_datetime(a.priority_since),
                condition_priority=a.condition_priority,
                latched=rank(a.condition_priority) < rank(a.priority),
                acknowledged_at=None if a.acked_at is None else to_datetime(a.acked_at),
                acknowledged_by=a.acked_by,
                escalated_to=tuple(a.notified),
            )
        )
    out.sort(key=lambda x: (-rank(x.priority), x.raised_at, x.rule_id))
    return out


def audio_paused_until(state: BayAlarmState) -> datetime | None:
    """End of the current audio pause, if audio is paused."""
    return None if state.audio_paused_until is None else to_datetime(state.audio_paused_until)


class AlarmEngine:
    """A profile bound to the pure functions, for callers that keep one engine per protocol."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    def new_state(self) -> BayAlarmState:
        """The state of a bay before any input."""
        return new_state(self.profile)

    def evaluate(self, state: BayAlarmState, inp: AlarmInput, now: datetime) -> tuple[BayAlarmState, list[AlarmEvent]]:
        """See ``evaluate``."""
        return evaluate(self.profile, state, inp, now)


class _Step:
    """The working context of one ``evaluate`` call (mutates its own copy of the state)."""

    def __init__(self, profile: Profile, state: BayAlarmState, now: float) -> None:
        self.p = profile
        self.s = state
        self.now = now
        self.t = to_datetime(now)
        self.events: list[AlarmEvent] = []
        self.cond: dict[str, Priority | None] = {}  # this step's condition priority per rule

    # --- driver -----------------------------------------------------------------------------------------

    def run(self, inp: AlarmInput) -> None:
        self._audio_timeout()
        self._apply(inp)
        for rule in self.p.rules:
            self._rule(rule)
        if isinstance(inp, AckInput):
            self._ack(inp)
        self._escalate()

    def _emit(self, kind: EventKind, **kw: object) -> None:
        self.events.append(AlarmEvent.model_validate({"kind": kind, "t": self.t, **kw}))

    # --- inputs -----------------------------------------------------------------------------------------

    def _apply(self, inp: AlarmInput) -> None:
        s, now = self.s, self.now
        if isinstance(inp, ReadingInput):
            self._reading(inp)
        elif isinstance(inp, ReadingsInput):
            for r in inp.readings:
                self._reading(r)
        elif isinstance(inp, ChartInput):
            s.samples[inp.scale.value] = Sample(value=float(inp.value), t=now)
            s.last_update[inp.scale.value] = now
            s.last_valid[inp.scale.value] = now
        elif isinstance(inp, DeviceStatusInput):
            s.devices[inp.device_id] = inp.state
        elif isinstance(inp, DeviceConditionInput):
            codes = s.conditions.setdefault(inp.device_id, {})
            if inp.active:
                codes.setdefault(inp.code, now)
            else:
                codes.pop(inp.code, None)
        elif isinstance(inp, PhaseInput):
            if s.phase is Phase.BASELINE and inp.phase is not Phase.BASELINE:
                self._take_baselines()
            s.phase = inp.phase
        elif isinstance(inp, BaselineInput):
            if is_known_param(inp.param):
                s.manual_baselines[inp.param] = inp.value
        elif isinstance(inp, AudioPauseInput):
            cfg = self.p.audio_pause
            until = now + min(inp.duration_s or cfg.default_s, cfg.max_s)
            s.audio_paused_until, s.audio_paused_by = until, inp.user
            self._emit(EventKind.AUDIO_PAUSED, user=inp.user, due=to_datetime(until))
        elif isinstance(inp, AudioResumeInput):
            if s.audio_paused_until is not None:
                s.audio_paused_until = s.audio_paused_by = None
                self._emit(EventKind.AUDIO_RESUMED, user=inp.user)
        else:
            assert isinstance(inp, AckInput | Tick)

    def _reading(self, r: ReadingInput) -> None:
        s, now = self.s, self.now
        if not is_known_param(r.param) or r.param in SCALE_LABEL:
            return  # waveforms, unknown keys, scales: nothing to alarm on from a device
        v = r.usable
        if v is not None and v != v:  # NaN: no value
            v = None
        s.samples[r.param] = Sample(value=v, t=now, questionable=r.quality is Quality.QUESTIONABLE)
        s.last_update[r.param] = now
        if v is not None:
            s.last_valid[r.param] = now
            if s.phase is Phase.BASELINE and r.quality is Quality.VALID:
                buf = s.baseline_samples.get(r.param, [])
                s.baseline_samples[r.param] = [*buf[len(buf) + 1 - self.p.baseline.max_samples :], (now, v)]

    def _audio_timeout(self) -> None:
        s = self.s
        if s.audio_paused_until is not None and self.now >= s.audio_paused_until - _EPS:
            s.audio_paused_until = s.audio_paused_by = None
            self._emit(EventKind.AUDIO_RESUMED)

    def _take_baselines(self) -> None:
        """Baseline = median of the baseline-phase samples, if enough (count and span) were taken."""
        spec = self.p.baseline
        for param, buf in self.s.baseline_samples.items():
            if len(buf) >= spec.min_samples and buf[-1][0] - buf[0][0] >= spec.min_span_s.get(param, 0.0) - _EPS:
                self.s.baselines[param] = median(v for _, v in buf)

    def _baseline(self, param: str) -> float | None:
        return self.s.manual_baselines.get(param, self.s.baselines.get(param))

    # --- conditions -------------------------------------------------------------------------------------

    def _limit(self, c: ValueCond, asserted: bool) -> float | None:
        if c.value is not None:
            limit = c.value
        else:
            base = self._baseline(c.param)
            if base is None:
                return None
            limit = (
                base + c.baseline_delta if c.baseline_delta is not None else base * (1 + (c.baseline_pct or 0) / 100)
            )
        if asserted and c.hysteresis:
            limit += c.hysteresis if c.op in ("<", "<=") else -c.hysteresis
        return limit

    def _current(self, c: ValueCond) -> tuple[float | None, float | None, float | None]:
        """(value, valid until, sample time) of the parameter, or Nones when it is unknown now."""
        smp = self.s.samples.get(c.param)
        if smp is None or smp.value is None:
            return None, None, None
        hold = c.max_age_s or self.p.hold_s.get(c.param)
        if hold is None and is_continuous(c.param):
            hold = self.p.sample_hold_s
        until = None if hold is None else smp.t + hold
        if until is not None and self.now > until + _EPS:
            return None, None, None
        return smp.value, until, smp.t

    def _questionable(self, c: Condition) -> bool:
        """True when a value the condition reads has questionable quality (artifact guard, C2)."""
        for leaf in leaves(c):
            smp = self.s.samples.get(leaf.param) if isinstance(leaf, ValueCond) else None
            if smp is not None and smp.questionable:
                return True
        return False

    def _age(self, c: AgeCond, ls: LevelState) -> float:
        seen = self.s.last_valid if c.valid_only else self.s.last_update
        start = self.now if ls.applicable_since is None else ls.applicable_since
        return self.now - max([start, *(seen[p] for p in c.params if p in seen)])

    def _eval(self, c: Condition, ls: LevelState) -> _Eval:
        if isinstance(c, ValueCond):
            v, until, st = self._current(c)
            if v is None:
                # A scale never charted is simply not abnormal; a missing device value is unknown.
                return (False if c.param in SCALE_LABEL else None), None, None
            limit = self._limit(c, ls.asserted)
            if limit is None:
                return False, None, None
            return _compare(v, c.op, limit), until, st
        if isinstance(c, InvalidCond):
            smp = self.s.samples.get(c.invalid)
            return (smp is not None and smp.value is None), None, None
        if isinstance(c, AgeCond):
            return self._age(c, ls) > c.age_s + _EPS, None, None
        if isinstance(c, DeviceCond):
            return any(code in c.device for codes in self.s.conditions.values() for code in codes), None, None
        if isinstance(c, LinkCond):
            return any(st in c.link for st in self.s.devices.values()), None, None
        if isinstance(c, RuleRef):
            return rank(self.cond.get(c.rule)) >= rank(c.min_priority), None, None
        subs = [self._eval(x, ls) for x in (c.all if isinstance(c, AllCond) else c.any)]
        times = [st for _, _, st in subs if st is not None]
        newest = max(times) if times else None
        if isinstance(c, AllCond):
            if any(r is False for r, _, _ in subs):
                return False, None, None
            if any(r is None for r, _, _ in subs):
                return None, None, None
            first: float | None = None
            for _, u, _ in subs:
                first = _min_until(first, u)
            return True, first, newest
        assert isinstance(c, AnyCond)
        true = [(u, st) for r, u, st in subs if r is True]
        if true:
            untils = [u for u, _ in true]
            stamps = [st for _, st in true if st is not None]
            return True, None if None in untils else max(u for u in untils if u is not None), max(stamps, default=None)
        if any(r is None for r, _, _ in subs):
            return None, None, None
        return False, None, None

    def _describe(self, c: Condition, ls: LevelState, head: str) -> list[str]:
        """Details of the leaves that hold, e.g. ``86 < 90`` or ``NIBP sys 172 ≥ 170 (baseline 130 +40)``.

        One detail per parameter; the parameter's label is left out when ``head`` already starts with it.
        """
        out: list[str] = []
        said: set[str] = set()
        for leaf in leaves(c):
            if isinstance(leaf, ValueCond):
                if not leaf.describe or leaf.param in said:
                    continue
                v, _, _ = self._current(leaf)
                limit = self._limit(leaf, False)
                held = self._limit(leaf, ls.asserted)
                if v is None or limit is None or held is None or not _compare(v, leaf.op, held):
                    continue
                said.add(leaf.param)
                label = param_label(leaf.param)
                text = f"{_fmt(v)} {_OPS[leaf.op]} {_fmt(limit)}"
                if not head.upper().startswith(label.upper()):
                    text = f"{label} {text}"
                base = self._baseline(leaf.param)
                if leaf.baseline_delta is not None and base is not None:
                    text += f" (baseline {_fmt(base)} {leaf.baseline_delta:+g})"
                elif leaf.baseline_pct is not None and base is not None:
                    text += f" (baseline {_fmt(base)} {leaf.baseline_pct:+g} %)"
                out.append(text)
            elif isinstance(leaf, AgeCond):
                age = self._age(leaf, ls)
                if age > leaf.age_s:
                    out.append(f"{age / 60:.0f} min" if age >= 120 else f"{age:.0f} s")
        return out

    def _values(self, rule: Rule, levels: list[LevelState]) -> dict[str, float | None]:
        """The values behind a rule: its parameters, their baselines and ages."""
        out: dict[str, float | None] = {}
        for lvl, ls in zip(rule.levels, levels, strict=True):
            for leaf in leaves(lvl.when):
                if isinstance(leaf, ValueCond):
                    smp = self.s.samples.get(leaf.param)
                    out[leaf.param] = None if smp is None else smp.value
                    if leaf.value is None:
                        out[f"baseline_{leaf.param}"] = self._baseline(leaf.param)
                elif isinstance(leaf, InvalidCond):
                    smp = self.s.samples.get(leaf.invalid)
                    out[leaf.invalid] = None if smp is None else smp.value
                elif isinstance(leaf, AgeCond) and ls.applicable_since is not None:
                    out["age_s"] = round(self._age(leaf, ls), 1)
        return out

    # --- rules ------------------------------------------------------------------------------------------

    def _rule(self, rule: Rule) -> None:
        rs = self.s.rules.get(rule.id)
        if rs is None or len(rs.levels) != len(rule.levels):
            rs = self.s.rules[rule.id] = RuleState(levels=[LevelState() for _ in rule.levels])
        requests: list[tuple[Level, LevelState]] = []
        active = rank(rs.alarm.priority) if rs.alarm is not None else -1
        for i, lvl in enumerate(rule.levels):
            if self.s.phase not in (lvl.phases or rule.phases):
                rs.levels[i] = LevelState()
                continue
            ls = rs.levels[i]
            if ls.applicable_since is None:
                ls.applicable_since = self.now
            if self._advance(lvl, ls, waive=rank(lvl.priority) <= active) and (
                lvl.request_repeat or lvl.confirm_samples > 1
            ):
                requests.append((lvl, ls))
        if requests:
            lvl, ls = max(requests, key=lambda x: rank(x[0].priority))
            head = lvl.text or rule.label
            self._emit(
                EventKind.CONFIRMATION_REQUESTED,
                rule_id=rule.id,
                row=rule.row,
                priority=lvl.priority,
                category=rule.category,
                text=" ".join([f"REPEAT MEASUREMENT: {head}", *self._describe(lvl.when, ls, head)]),
                values=self._values(rule, rs.levels),
                due=to_datetime(self.now + lvl.repeat_within_s),
            )
        top = self._top(rule, rs)
        self.cond[rule.id] = None if top is None else top[0].priority
        self._transition(rule, rs, top)

    @staticmethod
    def _top(rule: Rule, rs: RuleState) -> tuple[Level, LevelState] | None:
        """The asserted level of highest priority (the first of equals), if any."""
        asserted = [(lvl, ls) for lvl, ls in zip(rule.levels, rs.levels, strict=True) if ls.asserted]
        return max(asserted, key=lambda x: rank(x[0].priority), default=None)

    def _advance(self, lvl: Level, ls: LevelState, waive: bool) -> bool:
        """Update one level's persistence timer; True when a repeat measurement should be requested.

        ``waive``: the rule's alarm is already active at this level's priority or higher, so the level
        asserts without its delay or confirmation (delays keep transients from raising an alarm; they must
        not turn a HIGH that improves to MEDIUM into "ended" followed by a new MEDIUM).
        """
        res, until, stamp = self._eval(lvl.when, ls)
        now = self.now
        if res is True:
            if not ls.running:
                ls.running, ls.elapsed, ls.count, ls.sample_t, ls.paused = True, 0.0, 1, stamp, False
            else:
                if not ls.paused:
                    end = now if ls.valid_until is None else min(now, ls.valid_until)
                    ls.elapsed += max(0.0, end - ls.last)
                ls.paused = False
                if stamp is not None and (ls.sample_t is None or stamp - ls.sample_t >= lvl.confirm_gap_s - _EPS):
                    ls.count += 1
                    ls.sample_t = stamp
            ls.last, ls.valid_until = now, until
            request = not ls.requested and not ls.asserted
            if request:
                ls.requested = True
            delay = lvl.delay_s
            if lvl.questionable_delay_s and self._questionable(lvl.when):
                delay += lvl.questionable_delay_s
            if waive or (ls.elapsed >= delay - _EPS and ls.count >= lvl.confirm_samples):
                ls.asserted = True
            return request
        if res is None:
            if ls.running and not ls.paused:
                end = now if ls.valid_until is None else min(now, ls.valid_until)
                ls.elapsed += max(0.0, end - ls.last)
                ls.last, ls.paused = now, True
            return False
        ls.running, ls.elapsed, ls.paused, ls.valid_until = False, 0.0, False, None
        ls.count, ls.sample_t, ls.asserted, ls.requested = 0, None, False, False
        return False

    def _transition(self, rule: Rule, rs: RuleState, top: tuple[Level, LevelState] | None) -> None:
        cond = None if top is None else top[0].priority
        a = rs.alarm
        if a is None:
            if top is None:
                return
            self.s.seq += 1
            a = rs.alarm = AlarmRecord(
                alarm_id=f"{rule.id}-{self.s.seq}",
                rule_id=rule.id,
                row=rule.row,
                category=rule.category,
                priority=top[0].priority,
                condition_priority=cond,
                text=self._text(rule, top),
                values=self._values(rule, rs.levels),
                raised_at=self.now,
                priority_since=self.now,
                unacked_since=self.now,
            )
            self._alarm_event(EventKind.RAISED, rule, a)
            return
        latched = a.acked_at is None and (a.priority in rule.latch or a.held)
        before, a.condition_priority = a.condition_priority, cond
        if top is None:
            if not latched:
                self._clear(rule, rs)
            elif before is not None:
                a.values = self._values(rule, rs.levels)
                self._alarm_event(EventKind.CONDITION_ENDED, rule, a)
        elif rank(cond) > rank(a.priority) or (rank(cond) < rank(a.priority) and not latched):
            up = rank(cond) > rank(a.priority)
            self._change(rule, rs, top, unack=up)

    def _text(self, rule: Rule, top: tuple[Level, LevelState]) -> str:
        lvl, ls = top
        head = lvl.text or rule.label
        return " ".join([head, *self._describe(lvl.when, ls, head)])

    def _change(self, rule: Rule, rs: RuleState, top: tuple[Level, LevelState] | None, unack: bool) -> None:
        a = rs.alarm
        assert a is not None and top is not None
        prev = a.priority
        a.priority, a.priority_since, a.held = top[0].priority, self.now, False
        a.text, a.values = self._text(rule, top), self._values(rule, rs.levels)
        if unack:
            a.acked_at = a.acked_by = None
            a.unacked_since = self.now
        self._alarm_event(EventKind.PRIORITY_CHANGED, rule, a, previous_priority=prev)

    def _clear(self, rule: Rule, rs: RuleState) -> None:
        a = rs.alarm
        assert a is not None
        a.values = self._values(rule, rs.levels)
        rs.alarm = None
        self._alarm_event(EventKind.CLEARED, rule, a)

    def _alarm_event(self, kind: EventKind, rule: Rule, a: AlarmRecord, **kw: object) -> None:
        self._emit(
            kind,
            rule_id=rule.id,
            alarm_id=a.alarm_id,
            row=rule.row,
            priority=a.priority,
            category=rule.category,
            text=a.text,
            values=a.values,
            **kw,
        )

    # --- user actions and timers ------------------------------------------------------------------------

    def _ack(self, inp: AckInput) -> None:
        for rule in self.p.rules:
            rs = self.s.rules[rule.id]
            a = rs.alarm
            if a is None or a.acked_at is not None or a.priority is Priority.INFO:
                continue  # info flags (sentinel markers) are logged, not acknowledged
            if inp.rule_id not in ("all", rule.id, a.alarm_id):
                continue
            a.acked_at, a.acked_by = self.now, inp.user
            self._alarm_event(
                EventKind.ACKNOWLEDGED, rule, a, user=inp.user, time_to_ack_s=round(self.now - a.unacked_since, 3)
            )
            if a.condition_priority is None:
                self._clear(rule, rs)
            elif rank(a.condition_priority) < rank(a.priority):
                self._change(rule, rs, self._top(rule, rs), unack=False)

    def _escalate(self) -> None:
        for rule in self.p.rules:
            a = self.s.rules[rule.id].alarm
            if a is None or a.acked_at is not None or a.priority in a.escalated:
                continue
            esc = self.p.escalation_for(a.priority)
            if esc is None or self.now - a.priority_since < esc.after_s - _EPS:
                continue
            prev = a.priority
            a.escalated.append(a.priority)
            a.notified.append(esc.notify)
            if esc.raise_to is not None and rank(esc.raise_to) > rank(a.priority):
                a.priority, a.priority_since, a.held = esc.raise_to, self.now, True
            self._alarm_event(EventKind.ESCALATED, rule, a, previous_priority=prev, notify=esc.notify)
