"""Profiles: the default loads and cites its sources; a broken one is refused naming the rule and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from app.alarms.profile import ProfileError, leaves, load_profile, parse_profile
from monitors.models import Priority
from tests.alarms.dsl import PROFILE

RAW: dict[str, Any] = PROFILE.model_dump(mode="json", exclude_none=True)

TABLE_1_ROWS = {"1", "1a", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13"}
TECHNICAL_ROWS = {"T1", "T2", "T3", "T4", "T4b", "T5", "T6"}
COMPOSITES = {"C1", "C4"}


def test_default_profile_covers_table_1() -> None:
    assert {r.row for r in PROFILE.rules} == TABLE_1_ROWS | TECHNICAL_ROWS | COMPOSITES


def test_every_rule_cites_clinical_md_or_the_issue() -> None:
    for r in PROFILE.rules:
        assert "CLINICAL.md" in r.source, r.id
        assert any(tag in r.source for tag in ("[S]", "[S2]", "[R]", "[I]")), r.id
    for e in PROFILE.escalation:
        assert "CLINICAL.md" in e.source
    assert "CLINICAL.md" in PROFILE.audio_pause.source and "CLINICAL.md" in PROFILE.baseline.source


def test_high_physiological_rules_latch_as_table_1_says() -> None:
    latching = {r.id for r in PROFILE.rules if Priority.HIGH in r.latch}
    assert latching == {"spo2_low", "no_breath", "hr_low", "bp_high", "sedation_deep", "no_data", "resp_depression"}


def test_load_by_path(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[2] / "app/alarms/profiles/ketamine_chronic_pain.toml"
    dst = tmp_path / "copy.toml"
    dst.write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_profile(dst) == PROFILE


def test_unknown_profile_name() -> None:
    with pytest.raises(ProfileError, match="no alarm profile named 'nope'"):
        load_profile("nope")


def test_invalid_toml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("id = \n", encoding="utf-8")
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(bad)


def _broken(edit: Any) -> str:
    raw = copy.deepcopy(RAW)
    edit(raw)
    with pytest.raises(ProfileError) as exc:
        parse_profile(raw, "broken")
    return str(exc.value)


def _rule(raw: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return next(r for r in raw["rules"] if r["id"] == rule_id)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda raw: _rule(raw, "spo2_low").pop("source"), "rule 'spo2_low' field source: Field required"),
        (lambda raw: _rule(raw, "spo2_low").update(source="x"), "rule 'spo2_low' field source: String should have"),
        (
            lambda raw: _rule(raw, "spo2_low")["levels"][1]["when"].update(param="sp02"),
            "rule 'spo2_low' field levels[1].when: unknown parameter 'sp02'",
        ),
        (
            lambda raw: _rule(raw, "spo2_low")["levels"][0]["when"].update(op="=<"),
            "rule 'spo2_low' field levels[0].when.op: Input should be",
        ),
        (
            lambda raw: _rule(raw, "hr_high")["levels"][1]["when"].update(value=100),
            "rule 'hr_high' field levels[1].when: give exactly one of value, baseline_delta, baseline_pct",
        ),
        (
            lambda raw: _rule(raw, "spo2_low")["levels"][0].update(delay_s=-1),
            "rule 'spo2_low' field levels[0].delay_s: Input should be greater than or equal to 0",
        ),
        (
            lambda raw: _rule(raw, "spo2_low")["levels"][0].update(priority="urgent"),
            "rule 'spo2_low' field levels[0].priority",
        ),
        (
            lambda raw: _rule(raw, "spo2_low")["levels"][0].update(when={"parm": "spo2"}),
            "rule 'spo2_low' field levels[0].when: a condition needs one of the keys",
        ),
        (
            lambda raw: _rule(raw, "no_breath")["levels"][0]["when"]["any"][1].update(op="!"),
            "rule 'no_breath' field levels[0].when.any[1].op",
        ),
        (
            lambda raw: _rule(raw, "resp_depression")["levels"][0]["when"]["all"][0].update(rule="etco2_hi"),
            "rule 'resp_depression' field levels[0].when.rule: 'etco2_hi' is not a rule defined earlier",
        ),
        (
            lambda raw: _rule(raw, "sedation_overdue")["levels"][1].update(phases=["baseline"]),
            "rule 'sedation_overdue': levels[1].phases ['baseline'] are outside the rule's phases",
        ),
        (
            lambda raw: raw["rules"].append(copy.deepcopy(raw["rules"][0])),
            "rule 'spo2_low' field id: duplicate rule id",
        ),
        (lambda raw: _rule(raw, "temp_abnormal").update(phases=["sleeping"]), "rule 'temp_abnormal' field phases[0]"),
        (lambda raw: raw["audio_pause"].update(default_s=600), "field audio_pause: Value error, default_s is longer"),
        (
            lambda raw: _rule(raw, "co2_line")["levels"][0].update(confirm_samples=2),
            "rule 'co2_line' field levels[0]: confirm_samples > 1 needs a value condition",
        ),
        (lambda raw: _rule(raw, "spo2_low").update(colour="red"), "rule 'spo2_low' field colour: Extra inputs"),
    ],
)
def test_invalid_profile_is_refused_naming_rule_and_field(edit: Any, expected: str) -> None:
    msg = _broken(edit)
    assert "alarm profile 'broken' is invalid" in msg
    assert expected.replace("Value error, ", "") in msg, msg


def test_leaves_walks_composites() -> None:
    c1 = PROFILE.rule("resp_depression").levels[0].when
    assert len(leaves(c1)) == 4


def test_every_problem_is_listed_once() -> None:
    def edit(raw: dict[str, Any]) -> None:
        _rule(raw, "spo2_low")["levels"][1]["when"]["param"] = "sp02"
        _rule(raw, "resp_depression")["levels"][0]["when"]["all"][1]["any"][0]["op"] = "!"

    lines = _broken(edit).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "rule 'spo2_low' field levels[1].when",
        "rule 'resp_depression' field levels[0].when.all[1].any[0].op",
    ]
