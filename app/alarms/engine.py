"""The alarm engine: ``evaluate(profile, state, input, now) -> (state, events)``, pure and deterministic.

No clock and no I/O: ``now`` is passed in and is the only time the engine uses (it never goes back: an
earlier ``now`` is treated as the last one). Feed every input of a bay in order, and a ``Tick`` about once
a second so that delays, staleness, escalation and the audio pause run out without new data.

Semantics (CLINICAL.md §1 Table 1 and §2.6; IEC 60601-1-8 as summarised there):

- **Persistence.** A level asserts when its condition has held for ``delay_s`` (and, for confirmation, on
  ``confirm_samples`` consecutive measurements). Time held is counted between evaluations.
- **Missing data pauses.** A condition on a value that is absent, invalid or older than the profile's
  ``sample_hold_s`` (continuous parameters; NIBP and charted scores stay current until replaced) is
  *unknown*: the persistence timer neither runs nor resets, and an asserted level stays asserted. Missing
  data is never taken as normal (it cannot clear an alarm) nor as abnormal (it cannot raise a
  physiological one); the technical rules (probe off, stale, no data) report it.
- **Baseline missing.** A baseline-relative condition without a baseline is false, and so is one on a
  scale never charted (each charted score counts until the same scale is charted again).
- **Artifact guard (C2).** While a value the level reads is of questionable quality, the level's
  ``questionable_delay_s`` is added to its delay.
- **Hysteresis.** An asserted level clears only when the value is beyond its limit by ``hysteresis``.
- **Priority.** A rule's condition priority is its highest asserted level. A worse condition raises the
  alarm's priority at once (``priority_changed``, and the alarm needs a new acknowledgement); a better one
  lowers it unless the alarm is latched. While an alarm is active, its levels at or below its priority
  assert without their delay or confirmation: an improving HIGH continues as MEDIUM, it does not end.
- **Latching.** An unacknowledged alarm at a priority the rule latches (default HIGH) stays at that
  priority after its condition improves or ends (``condition_ended``); acknowledging it lowers or clears it.
- **Escalation.** An unacknowledged alarm that stays at a priority for the profile's ``after_s`` is
  escalated once per priority (``escalated`` with ``notify``; optionally raised, then held until ack).
- **Audio pause** lasts the requested time, capped at the profile maximum; ``audio_resumed`` ends it. It
  silences nothing else: alarms, escalation and the visual signal go on.
- **Phases.** A rule (or level) outside its phases is reset; its alarm clears unless latched.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable
from datetime import datetime
from statistics import median
from typing import Any, TypeVar

from pydantic import BaseModel

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
    LimitsInput,
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
    Escalation,
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


_OP_FN: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


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
    step = _Step(_compiled(profile), s, t)
    step.run(inp)
    return s, step.events


# --- copies -------------------------------------------------------------------------------------------
#
# ``evaluate`` works copy-on-write: the new state gets new top-level containers, but its ``RuleState``,
# ``LevelState`` and ``AlarmRecord`` objects are the given state's until the step changes them; the step
# then replaces them with copies first (``_Step._own_*``). Nothing reachable from the given state is ever
# changed. Copies skip pydantic's ``model_copy`` machinery (no validation either way).

_M = TypeVar("_M", bound=BaseModel)
_oset = object.__setattr__


def _clone(m: _M, update: dict[str, Any] | None = None) -> _M:
    """``m.model_copy(update=update)``, faster (these models have no extra or private attributes)."""
    c = object.__new__(type(m))
    d = m.__dict__.copy()
    fields_set = set(m.__pydantic_fields_set__)
    if update:
        d.update(update)
        fields_set.update(update)
    _oset(c, "__dict__", d)
    _oset(c, "__pydantic_extra__", None)
    _oset(c, "__pydantic_fields_set__", fields_set)
    _oset(c, "__pydantic_private__", None)
    return c


def _copy(state: BayAlarmState) -> BayAlarmState:
    """A copy the step may change: containers are new, values replaced rather than mutated are shared.

    ``conditions`` (device -> codes) and ``rules`` are copied one level only: the step replaces an inner
    codes dict, a ``RuleState`` and what it holds before changing them.
    """
    return _clone(
        state,
        {
            "samples": state.samples.copy(),  # Sample objects are replaced, never changed
            "last_valid": state.last_valid.copy(),
            "last_update": state.last_update.copy(),
            "baseline_samples": state.baseline_samples.copy(),  # lists are replaced, never appended to
            "baselines": state.baselines.copy(),
            "manual_baselines": state.manual_baselines.copy(),
            "devices": state.devices.copy(),
            "conditions": state.conditions.copy(),
            "rules": state.rules.copy(),
        },
    )


#: LevelState() as a dict: a level outside its phases is reset to this.
_RESET_LEVEL = LevelState().__dict__
#: The fields ``_advance`` resets when a condition does not hold, and their reset values.
_RESET_KEY = operator.attrgetter(
    "running", "elapsed", "paused", "valid_until", "count", "sample_t", "asserted", "requested"
)
_RESET_VALUES = (False, 0.0, False, None, 0, None, False, False)
_PHASES = tuple(Phase)
_PHASE_INDEX = {phase: i for i, phase in enumerate(_PHASES)}


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


_DEVICE_PARAM: dict[str, bool] = {}


def _device_param(key: str) -> bool:
    """True for a key a device reading may alarm on: a numeric catalogue parameter, not a scale (cached)."""
    known = _DEVICE_PARAM.get(key)
    if known is None:
        known = _DEVICE_PARAM[key] = is_known_param(key) and key not in SCALE_LABEL
    return known


_SAMPLE_FIELDS = frozenset(("value", "t", "questionable"))


def _sample(value: float | None, t: float, questionable: bool) -> Sample:
    """``Sample(value=value, t=t, questionable=questionable)`` without validating what is valid already."""
    if (value is not None and type(value) is not float) or type(t) is not float:
        return Sample(value=value, t=t, questionable=questionable)
    m = object.__new__(Sample)
    _oset(m, "__dict__", {"value": value, "t": t, "questionable": questionable})
    _oset(m, "__pydantic_extra__", None)
    _oset(m, "__pydantic_fields_set__", set(_SAMPLE_FIELDS))
    _oset(m, "__pydantic_private__", None)
    return m


# --- the profile, compiled ----------------------------------------------------------------------------
#
# Per profile, once: each level's phases as a set, its condition tree as nested closures with the
# per-parameter constants (hold time, limit, operator) resolved, the escalation table as a dict.

#: A compiled condition: (step, level asserted, level applicable since) -> _Eval.
_Cond = Callable[["_Step", bool, float], _Eval]


def _compile_cond(c: Condition, p: Profile) -> _Cond:
    """The condition as a closure with the same result as the tree walk of the reference engine."""
    if isinstance(c, ValueCond):
        param = c.param
        missing: bool | None = False if param in SCALE_LABEL else None  # a scale never charted is not abnormal
        hold = c.max_age_s or p.hold_s.get(param)
        if hold is None and is_continuous(param):
            hold = p.sample_hold_s
        op = _OP_FN[c.op]
        value, delta, pct, hysteresis = c.value, c.baseline_delta, c.baseline_pct, c.hysteresis
        adjust = hysteresis if c.op in ("<", "<=") else -hysteresis

        def value_cond(st: _Step, asserted: bool, since: float) -> _Eval:
            smp = st.samples.get(param)
            if smp is None:
                return missing, None, None
            v = smp.value
            if v is None:
                return missing, None, None
            t = smp.t
            until = None
            if hold is not None:
                until = t + hold
                if st.now > until + _EPS:
                    return missing, None, None
            if value is not None:
                limit = value
            else:
                base = st.manual_baselines.get(param, st.baselines.get(param))
                if base is None:
                    return False, None, None
                limit = base + delta if delta is not None else base * (1 + (pct or 0) / 100)
            if asserted and hysteresis:
                limit += adjust
            return op(v, limit), until, t

        return value_cond
    if isinstance(c, InvalidCond):
        key = c.invalid

        def invalid_cond(st: _Step, asserted: bool, since: float) -> _Eval:
            smp = st.samples.get(key)
            return (smp is not None and smp.value is None), None, None

        return invalid_cond
    if isinstance(c, AgeCond):
        params, age_s, valid_only = c.params, c.age_s, c.valid_only

        def age_cond(st: _Step, asserted: bool, since: float) -> _Eval:
            seen = st.last_valid if valid_only else st.last_update
            latest = since
            for q in params:
                x = seen.get(q)
                if x is not None and x > latest:
                    latest = x
            return st.now - latest > age_s + _EPS, None, None

        return age_cond
    if isinstance(c, DeviceCond):
        codes = frozenset(c.device)

        def device_cond(st: _Step, asserted: bool, since: float) -> _Eval:
            return any(not codes.isdisjoint(active) for active in st.conditions.values()), None, None

        return device_cond
    if isinstance(c, LinkCond):
        states = frozenset(c.link)

        def link_cond(st: _Step, asserted: bool, since: float) -> _Eval:
            return not states.isdisjoint(st.devices.values()), None, None

        return link_cond
    if isinstance(c, RuleRef):
        ref, min_rank = c.rule, rank(c.min_priority)

        def rule_ref(st: _Step, asserted: bool, since: float) -> _Eval:
            return rank(st.cond.get(ref)) >= min_rank, None, None

        return rule_ref
    if isinstance(c, AllCond):
        subs = tuple(_compile_cond(x, p) for x in c.all)

        def all_cond(st: _Step, asserted: bool, since: float) -> _Eval:
            unknown = False
            first: float | None = None
            newest: float | None = None
            for sub in subs:
                r, u, t = sub(st, asserted, since)
                if r is False:
                    return False, None, None
                if r is None:
                    unknown = True
                elif not unknown:
                    if u is not None and (first is None or u < first):
                        first = u
                    if t is not None and (newest is None or t > newest):
                        newest = t
            if unknown:
                return None, None, None
            return True, first, newest

        return all_cond
    assert isinstance(c, AnyCond)
    alts = tuple(_compile_cond(x, p) for x in c.any)

    def any_cond(st: _Step, asserted: bool, since: float) -> _Eval:
        found = unknown = unbounded = False
        last: float | None = None
        newest: float | None = None
        for alt in alts:
            r, u, t = alt(st, asserted, since)
            if r is True:
                found = True
                if u is None:
                    unbounded = True
                elif last is None or u > last:
                    last = u
                if t is not None and (newest is None or t > newest):
                    newest = t
            elif r is None:
                unknown = True
        if found:
            return True, None if unbounded else last, newest
        if unknown:
            return None, None, None
        return False, None, None

    return any_cond


class _CLevel:
    """One level of a rule, compiled."""

    __slots__ = ("lvl", "phases", "questionable", "rank", "wants_request", "when")

    def __init__(self, rule: Rule, lvl: Level, p: Profile) -> None:
        self.lvl = lvl
        self.phases = frozenset(lvl.phases or rule.phases)
        self.rank = rank(lvl.priority)
        self.when = _compile_cond(lvl.when, p)
        #: the parameters whose questionable quality adds ``questionable_delay_s`` (artifact guard, C2)
        self.questionable = tuple(leaf.param for leaf in leaves(lvl.when) if isinstance(leaf, ValueCond))
        self.wants_request = lvl.request_repeat or lvl.confirm_samples > 1


class _CRule:
    """One rule, compiled."""

    __slots__ = ("applicable", "id", "idle", "levels", "n", "rule")

    def __init__(self, rule: Rule, p: Profile) -> None:
        self.rule = rule
        self.id = rule.id
        self.levels = tuple(_CLevel(rule, lvl, p) for lvl in rule.levels)
        self.n = len(self.levels)
        #: per phase (``_PHASE_INDEX``): the levels that apply, as (index, level), and those that do not
        self.applicable = tuple(
            tuple((i, cl) for i, cl in enumerate(self.levels) if phase in cl.phases) for phase in _PHASES
        )
        self.idle = tuple(tuple(i for i, cl in enumerate(self.levels) if phase not in cl.phases) for phase in _PHASES)


class _Compiled:
    """A profile, compiled for ``_Step``."""

    __slots__ = ("escalation", "profile", "rules")

    def __init__(self, p: Profile) -> None:
        self.profile = p
        self.rules = tuple(_CRule(r, p) for r in p.rules)
        self.escalation: dict[Priority, Escalation] = {}
        for e in p.escalation:
            self.escalation.setdefault(e.priority, e)  # the first entry, like Profile.escalation_for


#: Compiled profiles by ``id()``; each entry keeps its profile alive, so an id is not reused while cached.
_CACHE: dict[int, tuple[Profile, _Compiled]] = {}
_CACHE_MAX = 32
_CACHE_LOCK = threading.Lock()


def _compiled(profile: Profile) -> _Compiled:
    """The compiled form of a profile (profiles are frozen: compiled once, kept for the next calls)."""
    hit = _CACHE.get(id(profile))
    if hit is not None and hit[0] is profile:
        return hit[1]
    c = _Compiled(profile)
    with _CACHE_LOCK:
        while len(_CACHE) >= _CACHE_MAX:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[id(profile)] = (profile, c)
    return c


class _Step:
    """The working context of one ``evaluate`` call (mutates its own copy of the state, copy-on-write)."""

    def __init__(self, compiled: _Compiled, state: BayAlarmState, now: float) -> None:
        self.c = compiled
        self.p = compiled.profile
        self.s = state
        self.now = now
        self._t: datetime | None = None
        self.events: list[AlarmEvent] = []
        self.cond: dict[str, Priority | None] = {}  # this step's condition priority per rule
        # The new state's containers (changed in place by the step, never replaced), for the conditions.
        self.samples = state.samples
        self.last_valid = state.last_valid
        self.last_update = state.last_update
        self.baselines = state.baselines
        self.manual_baselines = state.manual_baselines
        self.devices = state.devices
        self.conditions = state.conditions
        self.rules = state.rules
        self.phase_index = 0  # of the state's phase once the input is applied
        # What this step has copied already (and may change): rule ids, (rule id, level index), rule ids.
        self._own_rules: set[str] = set()
        self._own_levels: set[tuple[str, int]] = set()
        self._own_alarms: set[str] = set()

    @property
    def t(self) -> datetime:
        """``now`` as an aware datetime (the events' time)."""
        if self._t is None:
            self._t = to_datetime(self.now)
        return self._t

    # --- copy-on-write ----------------------------------------------------------------------------------

    def _own_rule(self, rule_id: str) -> RuleState:
        """The rule's state, copied (once per step) so that this step may change it."""
        rs = self.rules[rule_id]
        if rule_id in self._own_rules:
            return rs
        rs = self.rules[rule_id] = _clone(rs, {"levels": list(rs.levels), "alarm": rs.alarm})
        self._own_rules.add(rule_id)
        return rs

    def _own_level(self, rule_id: str, i: int) -> LevelState:
        """The level's state, copied (once per step) so that this step may change it."""
        rs = self._own_rule(rule_id)
        if (rule_id, i) in self._own_levels:
            return rs.levels[i]
        ls = rs.levels[i] = _clone(rs.levels[i])
        self._own_levels.add((rule_id, i))
        return ls

    def _own_alarm(self, rule_id: str) -> AlarmRecord:
        """The rule's active alarm, copied (once per step) so that this step may change it."""
        rs = self._own_rule(rule_id)
        a = rs.alarm
        assert a is not None
        if rule_id in self._own_alarms:
            return a
        a = rs.alarm = _clone(a, {"escalated": list(a.escalated), "notified": list(a.notified)})
        self._own_alarms.add(rule_id)
        return a

    # --- driver -----------------------------------------------------------------------------------------

    def run(self, inp: AlarmInput) -> None:
        self._audio_timeout()
        self._apply(inp)
        self.phase_index = _PHASE_INDEX[self.s.phase]
        for cr in self.c.rules:
            self._rule(cr)
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
        elif isinstance(inp, LimitsInput):
            s.limits = inp.overrides  # the caller evaluates with the profile these limits apply to
        elif isinstance(inp, ChartInput):
            s.samples[inp.scale.value] = Sample(value=float(inp.value), t=now)
            s.last_update[inp.scale.value] = now
            s.last_valid[inp.scale.value] = now
        elif isinstance(inp, DeviceStatusInput):
            s.devices[inp.device_id] = inp.state
        elif isinstance(inp, DeviceConditionInput):
            codes = s.conditions[inp.device_id] = dict(s.conditions.get(inp.device_id, {}))  # copy-on-write
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
        if not _device_param(r.param):
            return  # waveforms, unknown keys, scales: nothing to alarm on from a device
        v = r.usable
        if v is not None and v != v:  # NaN: no value
            v = None
        s.samples[r.param] = _sample(v, now, r.quality is Quality.QUESTIONABLE)
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

    # --- conditions (the reference tree walk, kept for alarm texts and values) --------------------------

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

    def _age(self, c: AgeCond, ls: LevelState) -> float:
        seen = self.s.last_valid if c.valid_only else self.s.last_update
        start = self.now if ls.applicable_since is None else ls.applicable_since
        return self.now - max([start, *(seen[p] for p in c.params if p in seen)])

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

    def _rule(self, cr: _CRule) -> None:
        rule, rid, now = cr.rule, cr.id, self.now
        rs = self.rules.get(rid)
        if rs is None or len(rs.levels) != cr.n:
            rs = self.rules[rid] = RuleState(levels=[LevelState() for _ in rule.levels])
            self._own_rules.add(rid)
            self._own_levels.update((rid, i) for i in range(cr.n))
        levels = rs.levels  # the given state's objects at the indexes this rule has not changed yet
        for i in cr.idle[self.phase_index]:  # outside their phases: reset (the order of levels does not matter)
            if levels[i].__dict__ != _RESET_LEVEL:
                self._own_rule(rid).levels[i] = LevelState()
                self._own_levels.add((rid, i))
        requests: list[tuple[Level, LevelState]] = []
        active = rank(rs.alarm.priority) if rs.alarm is not None else -1
        top: tuple[Level, LevelState] | None = None  # the asserted level of highest priority, the first of equals
        top_rank = -2
        for i, cl in cr.applicable[self.phase_index]:
            ls = levels[i]
            since = ls.applicable_since
            res, until, stamp = cl.when(self, ls.asserted, now if since is None else since)
            # Skip what _advance would leave unchanged (and then it requests nothing): an unknown condition
            # with the timer stopped or paused already, or a condition that does not hold on a reset level.
            if since is None or not (
                (not ls.running or ls.paused) if res is None else (res is False and _RESET_KEY(ls) == _RESET_VALUES)
            ):
                ls = self._own_level(rid, i)
                if since is None:
                    ls.applicable_since = now
                if self._advance(cl, ls, res, until, stamp, waive=cl.rank <= active) and cl.wants_request:
                    requests.append((cl.lvl, ls))
            if ls.asserted and cl.rank > top_rank:
                top, top_rank = (cl.lvl, ls), cl.rank
        rs = self.rules[rid]
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
        if top is None:
            self.cond[rid] = None
            if rs.alarm is None:
                return  # nothing asserted, no alarm: _transition has nothing to do
        else:
            self.cond[rid] = top[0].priority
        self._transition(rule, rs, top)

    @staticmethod
    def _top(cr: _CRule, rs: RuleState) -> tuple[Level, LevelState] | None:
        """The asserted level of highest priority (the first of equals), if any."""
        best: tuple[Level, LevelState] | None = None
        best_rank = -2
        for cl, ls in zip(cr.levels, rs.levels, strict=True):
            if ls.asserted and cl.rank > best_rank:
                best, best_rank = (cl.lvl, ls), cl.rank
        return best

    def _advance(
        self, cl: _CLevel, ls: LevelState, res: bool | None, until: float | None, stamp: float | None, waive: bool
    ) -> bool:
        """Update one level's persistence timer; True when a repeat measurement should be requested.

        ``res, until, stamp``: the level's condition now. ``waive``: the rule's alarm is already active at
        this level's priority or higher, so the level asserts without its delay or confirmation (delays keep
        transients from raising an alarm; they must not turn a HIGH that improves to MEDIUM into "ended"
        followed by a new MEDIUM).
        """
        lvl = cl.lvl
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
            if lvl.questionable_delay_s and self._questionable_params(cl.questionable):
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

    def _questionable_params(self, params: tuple[str, ...]) -> bool:
        """True when one of these parameters' latest sample has questionable quality."""
        for param in params:
            smp = self.samples.get(param)
            if smp is not None and smp.questionable:
                return True
        return False

    def _transition(self, rule: Rule, rs: RuleState, top: tuple[Level, LevelState] | None) -> None:
        cond = None if top is None else top[0].priority
        a = rs.alarm
        if a is None:
            if top is None:
                return
            self.s.seq += 1
            a = self._own_rule(rule.id).alarm = AlarmRecord(
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
            self._own_alarms.add(rule.id)
            self._alarm_event(EventKind.RAISED, rule, a)
            return
        latched = a.acked_at is None and (a.priority in rule.latch or a.held)
        before = a.condition_priority
        if before is not cond:
            a = self._own_alarm(rule.id)
            a.condition_priority = cond
        if top is None:
            if not latched:
                self._clear(rule, rs)
            elif before is not None:
                a = self._own_alarm(rule.id)
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
        a = self._own_alarm(rule.id)
        assert top is not None
        prev = a.priority
        a.priority, a.priority_since, a.held = top[0].priority, self.now, False
        a.text, a.values = self._text(rule, top), self._values(rule, rs.levels)
        if unack:
            a.acked_at = a.acked_by = None
            a.unacked_since = self.now
        self._alarm_event(EventKind.PRIORITY_CHANGED, rule, a, previous_priority=prev)

    def _clear(self, rule: Rule, rs: RuleState) -> None:
        a = self._own_alarm(rule.id)
        a.values = self._values(rule, rs.levels)
        self._own_rule(rule.id).alarm = None
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
        for cr in self.c.rules:
            rule = cr.rule
            a = self.rules[rule.id].alarm
            if a is None or a.acked_at is not None or a.priority is Priority.INFO:
                continue  # info flags (sentinel markers) are logged, not acknowledged
            if inp.rule_id not in ("all", rule.id, a.alarm_id):
                continue
            a = self._own_alarm(rule.id)
            rs = self.rules[rule.id]
            a.acked_at, a.acked_by = self.now, inp.user
            self._alarm_event(
                EventKind.ACKNOWLEDGED, rule, a, user=inp.user, time_to_ack_s=round(self.now - a.unacked_since, 3)
            )
            if a.condition_priority is None:
                self._clear(rule, rs)
            elif rank(a.condition_priority) < rank(a.priority):
                self._change(rule, rs, self._top(cr, rs), unack=False)

    def _escalate(self) -> None:
        escalation = self.c.escalation
        for cr in self.c.rules:
            rule = cr.rule
            a = self.rules[rule.id].alarm
            if a is None or a.acked_at is not None or a.priority in a.escalated:
                continue
            esc = escalation.get(a.priority)
            if esc is None or self.now - a.priority_since < esc.after_s - _EPS:
                continue
            a = self._own_alarm(rule.id)
            prev = a.priority
            a.escalated.append(a.priority)
            a.notified.append(esc.notify)
            if esc.raise_to is not None and rank(esc.raise_to) > rank(a.priority):
                a.priority, a.priority_since, a.held = esc.raise_to, self.now, True
            self._alarm_event(EventKind.ESCALATED, rule, a, previous_priority=prev, notify=esc.notify)
