"""Alarm profiles: rules as data, one TOML file per protocol, validated at start-up.

A profile is a list of rules. A rule has an id, a display label, a category (physiological, technical,
advisory), the phases it applies in, the priorities that latch, the clinical source it cites and one or
more *levels*. A level is a priority plus a condition (``when``), a persistence delay and optional
phases, repeat-measurement confirmation and text. The rule's alarm priority is the highest asserted level.

Conditions are small trees (see ``Condition``):

- ``{param, op, value | baseline_delta | baseline_pct, hysteresis, max_age_s, describe}``: the latest value of a
  catalogue parameter or a charted scale compared with an absolute or baseline-relative limit;
- ``{invalid = param}``: the latest sample of ``param`` came without a usable value (e.g. NIBP failed);
- ``{age_s, params, valid_only}``: no (valid) sample of any of ``params`` for longer than ``age_s``;
- ``{device = [codes]}``: a device reports one of these alarm codes as active (probe off, leads off...);
- ``{link = [states]}``: some device of the bay is in one of these connection states;
- ``{rule, min_priority}``: another (earlier) rule's condition is at least this priority;
- ``{all = [...]}`` / ``{any = [...]}``: composites.

``load_profile`` refuses a profile that does not validate with a ``ProfileError`` naming the rule and field.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from app.alarms.model import SCALE_LABEL, Phase, Scale
from monitors import parameters
from monitors.models import AlarmKind, DeviceState, Priority
from monitors.parameters import Cadence, Kind

#: Priority order, lowest first; ``rank`` compares priorities.
_RANK: dict[Priority, int] = {Priority.INFO: 0, Priority.LOW: 1, Priority.MEDIUM: 2, Priority.HIGH: 3}

Op = Literal["<", "<=", ">", ">="]


def rank(p: Priority | None) -> int:
    """Order of a priority (None lowest) so that HIGH > MEDIUM > LOW > INFO."""
    return -1 if p is None else _RANK[p]


def is_known_param(key: str) -> bool:
    """True for a numeric catalogue parameter or a charted scale."""
    if key in Scale.__members__.values():
        return True
    p = parameters.CATALOGUE.get(key)
    return p is not None and p.kind is Kind.NUMERIC


def is_continuous(key: str) -> bool:
    """True for a continuously streamed numeric (its last value goes stale); False for NIBP and charts."""
    p = parameters.CATALOGUE.get(key)
    return p is not None and p.cadence is Cadence.CONTINUOUS


def param_label(key: str) -> str:
    """Display label of a parameter or scale."""
    if key in SCALE_LABEL:
        return SCALE_LABEL[Scale(key)]
    return parameters.get(key).label


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_param(key: str) -> str:
    if not is_known_param(key):
        raise ValueError(f"unknown parameter {key!r} (numeric catalogue keys or scales rass, moaas, poss)")
    return key


class ValueCond(_Strict):
    """The latest value of ``param`` compared with an absolute or baseline-relative limit."""

    param: str
    op: Op
    value: float | None = None
    baseline_delta: float | None = None  # limit = baseline + delta
    baseline_pct: float | None = None  # limit = baseline * (1 + pct / 100)
    hysteresis: float = Field(default=0.0, ge=0)  # an asserted level clears only beyond limit ± hysteresis
    max_age_s: float | None = Field(default=None, gt=0)  # an older value counts as unknown
    describe: bool = True  # False for guards (e.g. "RR ≥ 1") that would only clutter the alarm text

    @model_validator(mode="after")
    def _check(self) -> ValueCond:
        _check_param(self.param)
        given = [n for n in ("value", "baseline_delta", "baseline_pct") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of value, baseline_delta, baseline_pct (got {given or 'none'})")
        return self


class InvalidCond(_Strict):
    """The latest sample of a parameter has no usable value (failed measurement, artifact)."""

    invalid: str

    @model_validator(mode="after")
    def _check(self) -> InvalidCond:
        _check_param(self.invalid)
        return self


class AgeCond(_Strict):
    """No (valid) sample of any of ``params`` for longer than ``age_s`` since the level became applicable."""

    age_s: float = Field(gt=0)
    params: tuple[str, ...] = Field(min_length=1)
    valid_only: bool = True

    @model_validator(mode="after")
    def _check(self) -> AgeCond:
        for p in self.params:
            _check_param(p)
        return self


class DeviceCond(_Strict):
    """A device of the bay reports one of these alarm codes as active."""

    device: tuple[str, ...] = Field(min_length=1)


class LinkCond(_Strict):
    """Some device of the bay is in one of these connection states."""

    link: tuple[DeviceState, ...] = Field(min_length=1)


class RuleRef(_Strict):
    """Another, earlier rule's condition is at least ``min_priority`` (its latch is ignored)."""

    rule: str
    min_priority: Priority = Priority.MEDIUM


class AllCond(_Strict):
    """All sub-conditions hold."""

    all: tuple[Condition, ...] = Field(min_length=1)


class AnyCond(_Strict):
    """At least one sub-condition holds."""

    any: tuple[Condition, ...] = Field(min_length=1)


_TAGS = {
    "param": "value",
    "invalid": "invalid",
    "age_s": "age",
    "device": "device",
    "link": "link",
    "rule": "rule",
    "all": "all",
    "any": "any",
}
_TYPE_TAGS: dict[type, str] = {
    ValueCond: "value",
    InvalidCond: "invalid",
    AgeCond: "age",
    DeviceCond: "device",
    LinkCond: "link",
    RuleRef: "rule",
    AllCond: "all",
    AnyCond: "any",
}


def _cond_tag(v: Any) -> str | None:
    if isinstance(v, dict):
        return next((tag for key, tag in _TAGS.items() if key in v), None)
    return _TYPE_TAGS.get(type(v))


Condition = Annotated[
    Annotated[ValueCond, Tag("value")]
    | Annotated[InvalidCond, Tag("invalid")]
    | Annotated[AgeCond, Tag("age")]
    | Annotated[DeviceCond, Tag("device")]
    | Annotated[LinkCond, Tag("link")]
    | Annotated[RuleRef, Tag("rule")]
    | Annotated[AllCond, Tag("all")]
    | Annotated[AnyCond, Tag("any")],
    Discriminator(
        _cond_tag,
        custom_error_type="condition",
        custom_error_message="a condition needs one of the keys: " + ", ".join(_TAGS),
    ),
]
AllCond.model_rebuild()
AnyCond.model_rebuild()


def leaves(c: Condition) -> list[Condition]:
    """The non-composite conditions of a tree, depth first."""
    if isinstance(c, AllCond):
        return [leaf for sub in c.all for leaf in leaves(sub)]
    if isinstance(c, AnyCond):
        return [leaf for sub in c.any for leaf in leaves(sub)]
    return [c]


class Level(_Strict):
    """One priority of a rule: the condition, how long it must persist, and where it applies."""

    priority: Priority
    when: Condition
    delay_s: float = Field(default=0.0, ge=0, le=3600)  # persistence: the condition holds this long
    questionable_delay_s: float = Field(default=0.0, ge=0, le=60)  # added while a value is questionable
    phases: tuple[Phase, ...] | None = None  # narrower than the rule's phases; None = the rule's
    confirm_samples: int = Field(default=1, ge=1, le=5)  # consecutive new samples that must agree
    request_repeat: bool = False  # ask for a repeat measurement when the condition first holds
    repeat_within_s: float = Field(default=120.0, gt=0)  # due time of the requested repeat
    confirm_gap_s: float = Field(default=10.0, ge=0)  # samples closer than this are one measurement
    text: str | None = Field(default=None, min_length=1)  # replaces the rule label in alarm text

    @model_validator(mode="after")
    def _check(self) -> Level:
        if self.confirm_samples > 1 and not any(isinstance(c, ValueCond) for c in leaves(self.when)):
            raise ValueError("confirm_samples > 1 needs a value condition (it counts new samples)")
        return self


class Rule(_Strict):
    """One alarm rule: levels, phases, latching and the clinical source it cites."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    row: str = Field(min_length=1)  # the CLINICAL.md Table 1 row it implements, e.g. "1", "T1", "C1"
    label: str = Field(min_length=1)
    category: AlarmKind
    phases: tuple[Phase, ...] = Field(min_length=1)
    latch: tuple[Priority, ...] = (Priority.HIGH,)  # priorities held until acknowledged
    levels: tuple[Level, ...] = Field(min_length=1)
    source: str = Field(min_length=10)

    @model_validator(mode="after")
    def _check(self) -> Rule:
        for i, lvl in enumerate(self.levels):
            extra = set(lvl.phases or ()) - set(self.phases)
            if extra:
                raise ValueError(f"levels[{i}].phases {sorted(p.value for p in extra)} are outside the rule's phases")
        return self


class Escalation(_Strict):
    """An unacknowledged alarm of ``priority`` for ``after_s`` is escalated to ``notify``."""

    priority: Priority
    after_s: float = Field(gt=0)
    notify: str = Field(min_length=1)
    raise_to: Priority | None = None  # also raise the alarm's priority (held until acknowledged)
    source: str = Field(min_length=10)


class AudioPause(_Strict):
    """Audio pause duration (default and the responsible organization's maximum)."""

    default_s: float = Field(gt=0)
    max_s: float = Field(gt=0)
    source: str = Field(min_length=10)

    @model_validator(mode="after")
    def _check(self) -> AudioPause:
        if self.default_s > self.max_s:
            raise ValueError("default_s is longer than max_s")
        return self


class BaselineSpec(_Strict):
    """How the baseline of each parameter is taken from the baseline-phase readings."""

    min_samples: int = Field(default=2, ge=1)
    min_span_s: dict[str, float] = Field(default_factory=dict)  # per parameter: first..last sample span
    max_samples: int = Field(default=1800, ge=2)  # per parameter; the oldest are dropped
    source: str = Field(min_length=10)

    @model_validator(mode="after")
    def _check(self) -> BaselineSpec:
        for p in self.min_span_s:
            _check_param(p)
        return self


class Profile(_Strict):
    """A validated alarm profile."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    version: int = Field(ge=1)
    default_phases: tuple[Phase, ...] = Field(min_length=1)
    sample_hold_s: float = Field(default=5.0, gt=0, le=60)  # a continuous value counts this long after arrival
    hold_s: dict[str, float] = Field(default_factory=dict)  # per-parameter override (slow senders)
    audio_pause: AudioPause
    escalation: tuple[Escalation, ...] = ()
    baseline: BaselineSpec
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _default_phases(cls, data: Any) -> Any:
        """Rules without ``phases`` take the profile's ``default_phases``."""
        if isinstance(data, dict) and isinstance(data.get("rules"), list):
            rules = [
                {**r, "phases": data.get("default_phases")} if isinstance(r, dict) and "phases" not in r else r
                for r in data["rules"]
            ]
            data = {**data, "rules": rules}
        return data

    @model_validator(mode="after")
    def _check(self) -> Profile:
        for p in self.hold_s:
            _check_param(p)
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule {rule.id!r} field id: duplicate rule id")
            for i, lvl in enumerate(rule.levels):
                for leaf in leaves(lvl.when):
                    if isinstance(leaf, RuleRef) and leaf.rule not in seen:
                        raise ValueError(
                            f"rule {rule.id!r} field levels[{i}].when.rule: {leaf.rule!r} is not a rule defined "
                            "earlier in the profile"
                        )
            seen.add(rule.id)
        prios = [e.priority for e in self.escalation]
        if len(prios) != len(set(prios)):
            raise ValueError("escalation: one entry per priority")
        return self

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError names it)."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(f"no rule {rule_id!r} in profile {self.id!r}")

    def escalation_for(self, priority: Priority) -> Escalation | None:
        """The escalation step for an alarm at ``priority``, if any."""
        return next((e for e in self.escalation if e.priority is priority), None)


class ProfileError(ValueError):
    """A profile file is missing or does not validate; the message names the rule and field."""


def _where(loc: tuple[int | str, ...], raw: dict[str, Any]) -> str:
    parts = list(loc)
    prefix = ""
    if len(parts) >= 2 and parts[0] == "rules" and isinstance(parts[1], int):
        rules = raw.get("rules")
        rid: object = None
        if isinstance(rules, list) and parts[1] < len(rules) and isinstance(rules[parts[1]], dict):
            rid = rules[parts[1]].get("id")
        prefix = f"rule {rid!r} " if rid else f"rule #{parts[1] + 1} "
        parts = parts[2:]
    # Drop the union tags pydantic inserts after "when" and list indexes ("when.value.param" -> "when.param").
    tags = set(_TAGS.values())
    out = ""
    for i, p in enumerate(parts):
        if isinstance(p, int):
            out += f"[{p}]"
        elif not (p in tags and i > 0 and (parts[i - 1] == "when" or isinstance(parts[i - 1], int))):
            out += ("." if out else "") + str(p)
    if not out:
        return prefix.strip() or "profile"
    return f"{prefix}field {out}"


def parse_profile(raw: dict[str, Any], name: str = "profile") -> Profile:
    """Validate a profile from its parsed TOML; ``ProfileError`` lists every problem by rule and field."""
    try:
        return Profile.model_validate(raw)
    except ValidationError as e:
        lines = []
        errors = e.errors()
        for err in errors:
            loc = err["loc"]
            if err["type"] == "too_short" and any(o["loc"][: len(loc)] == loc and o["loc"] != loc for o in errors):
                continue  # pydantic's echo of a failed item inside this list
            msg = err["msg"].removeprefix("Value error, ")
            if err["loc"]:
                lines.append(f"{_where(err['loc'], raw)}: {msg}")
            else:
                lines.append(msg)
        raise ProfileError(f"alarm profile {name!r} is invalid:\n  " + "\n  ".join(lines)) from None


def load_profile(name_or_path: str | Path = "ketamine_chronic_pain") -> Profile:
    """Load and validate a profile by name (a file in app/alarms/profiles/) or by path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        name = path.stem
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ProfileError(f"alarm profile {str(path)!r} cannot be read: {e}") from None
    else:
        name = str(name_or_path)
        res = resources.files("app.alarms") / "profiles" / f"{name}.toml"
        if not res.is_file():
            raise ProfileError(f"no alarm profile named {name!r} in app/alarms/profiles/")
        text = res.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"alarm profile {name!r} is not valid TOML: {e}") from None
    return parse_profile(raw, name)
