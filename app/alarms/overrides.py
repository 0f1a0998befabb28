"""Per-patient alarm limits: a copy of a profile with a physician's changes to some levels.

Used by the live alarm service (a bay whose session has limits of its own) and by what-if review (a recorded
session re-run with other thresholds). ``apply_overrides`` validates the result as a profile file is.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.alarms.model import LevelOverride
from app.alarms.profile import AllCond, AnyCond, Condition, Profile, ProfileError, ValueCond, leaves, parse_profile

__all__ = ["LevelOverride", "OverrideError", "apply_overrides", "value_leaves"]


class OverrideError(ValueError):
    """An override names an unknown rule, level or limit, or makes the profile invalid."""


def value_leaves(c: Condition) -> list[ValueCond]:
    return [leaf for leaf in leaves(c) if isinstance(leaf, ValueCond)]


def _replace_leaf(c: Condition, target: ValueCond, new: ValueCond) -> Condition:
    """The condition tree with ``target`` (by identity) replaced by ``new``."""
    if c is target:
        return new
    if isinstance(c, AllCond):
        return c.model_copy(update={"all": tuple(_replace_leaf(x, target, new) for x in c.all)})
    if isinstance(c, AnyCond):
        return c.model_copy(update={"any": tuple(_replace_leaf(x, target, new) for x in c.any)})
    return c


def apply_overrides(profile: Profile, overrides: Sequence[LevelOverride]) -> Profile:
    """A copy of ``profile`` with the overrides applied, validated as a profile file is.

    ``OverrideError`` names the rule, level and field of the first override that does not apply.
    """
    if not overrides:
        return profile
    rules = {r.id: r for r in profile.rules}
    for o in overrides:
        rule = rules.get(o.rule_id)
        if rule is None:
            raise OverrideError(f"unknown rule {o.rule_id!r} in profile {profile.id!r}")
        where = f"rule {o.rule_id!r} level {o.level_index}"
        if o.level_index >= len(rule.levels):
            raise OverrideError(
                f"{where}: the rule has {len(rule.levels)} level(s) (level_index 0..{len(rule.levels) - 1})"
            )
        lvl = rule.levels[o.level_index]
        update: dict[str, object] = {}
        if o.delay_s is not None:
            update["delay_s"] = o.delay_s
        kind = next((n for n in ("value", "baseline_delta", "baseline_pct") if getattr(o, n) is not None), None)
        if kind is not None:
            shown = [leaf for leaf in value_leaves(lvl.when) if leaf.describe]
            if not shown:
                raise OverrideError(
                    f"{where}: field {kind}: this level has no value limit (its condition is not a threshold)"
                )
            targets = shown if o.param is None else [leaf for leaf in shown if leaf.param == o.param]
            params = sorted({leaf.param for leaf in shown})
            if not targets:
                raise OverrideError(
                    f"{where}: field param: {o.param!r} is not compared by this level (one of {params})"
                )
            if len(targets) > 1:
                raise OverrideError(f"{where}: field param: the level compares {params}; say which limit to change")
            target = targets[0]
            new_leaf = target.model_copy(
                update={"value": None, "baseline_delta": None, "baseline_pct": None, kind: getattr(o, kind)}
            )
            update["when"] = _replace_leaf(lvl.when, target, new_leaf)
        levels = list(rule.levels)
        levels[o.level_index] = lvl.model_copy(update=update)
        rules[o.rule_id] = rule.model_copy(update={"levels": tuple(levels)})
    changed = profile.model_copy(update={"rules": tuple(rules[r.id] for r in profile.rules)})
    try:
        # model_copy does not validate: run the copy through the profile's own validators.
        return parse_profile(changed.model_dump(), profile.id)
    except ProfileError as e:
        raise OverrideError(str(e)) from None
