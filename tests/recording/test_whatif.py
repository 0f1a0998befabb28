"""What-if review (app/recording/whatif.py, app/api/whatif.py) on a recorded simulated session.

One over-sedation session is recorded through the real pipeline and alarm engine (``record_simulated_session``)
and re-run: with the profile that was active it reproduces the recorded alarms (the self-check); a looser
SpO₂ limit removes the SpO₂ alarm, a tighter BP limit adds BP alarms; overrides that do not apply are
refused by name. The API is exercised over a real server on that recording.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from app.alarms.model import AlarmEvent, ChartInput, EventKind, Phase, PhaseInput
from app.alarms.overrides import LevelOverride, OverrideError, apply_overrides
from app.alarms.profile import AnyCond, ValueCond, load_profile
from app.recording.model import SessionRecording
from app.recording.whatif import (
    MatchRow,
    WhatIfRequest,
    WhatIfResult,
    clock_basis,
    occurrences,
    profile_view,
    recorded_inputs,
    what_if,
)
from app.sessions import workflow
from app.sessions.model import ChartEntry, SedationItem
from tests.conftest import RecordedSession, running_server, small_settings

#: Fast enough for a test, slow enough that the simulated monitor keeps up on a busy 2-core machine
#: (a device clock that runs ahead of the data would distort what the live engine saw).
SPEED = 120.0

PROFILE = load_profile()
#: Rules raised by charted scores (the rest are raised by device data and timers).
CHARTED = {"sedation_deep", "agitation", "emergence"}


@dataclass(frozen=True)
class Recorded:
    db: Path
    sid: str
    rec: SessionRecording
    same: WhatIfResult  # re-run with the profile that was active


@pytest.fixture(scope="module")
def recorded(recorded_session: RecordedSession) -> Recorded:
    """The shared over-sedation recording (tests/conftest.py), re-run once with the active profile."""
    rec = recorded_session.load()
    return Recorded(recorded_session.db, recorded_session.session_id, rec, what_if(rec, PROFILE))


def _raised(rec: SessionRecording, rule_id: str) -> int:
    return sum(1 for e in rec.alarm_events if e.kind.value == "raised" and e.rule_id == rule_id)


def _first(rec: SessionRecording, minutes: float) -> SessionRecording:
    """The recording cut after its first ``minutes`` (a what-if run costs about one engine step per second)."""
    end = rec.start + timedelta(minutes=minutes)
    return dataclasses.replace(
        rec,
        end=end,
        readings=[r for r in rec.readings if r.t_device <= end],
        statuses=[s for s in rec.statuses if s.since <= end],
        device_alarms=[a for a in rec.device_alarms if a.t <= end],
        alarm_events=[e for e in rec.alarm_events if e.t <= end],
    )


def _minutes_after_first(rec: SessionRecording, rule_id: str, pad_min: float = 3.0) -> float:
    """Minutes from the start to just after the first recorded raise of ``rule_id``."""
    t = min(e.t for e in rec.alarm_events if e.kind.value == "raised" and e.rule_id == rule_id)
    return (t - rec.start).total_seconds() / 60 + pad_min


# ---- the self-check --------------------------------------------------------------------------------------


def test_same_profile_reproduces_the_recorded_alarms(recorded: Recorded) -> None:
    rec = recorded.rec
    assert clock_basis(rec.readings) == "device"  # the simulated bay ran its alarms on the device clock
    assert _raised(rec, "spo2_low") >= 1, "the over-sedation scenario should have raised SpO2 LOW"
    res = recorded.same
    assert res.recorded, "nothing was recorded"
    assert len(res.recorded) == sum(1 for e in rec.alarm_events if e.kind.value == "raised")
    assert res.counts.only_recorded == 0 and res.counts.only_whatif == 0, [
        (r.match, r.rule_id, r.offset_s) for r in res.rows if r.match != "both"
    ]
    for row in res.rows:
        assert row.recorded is not None and row.whatif is not None
        assert row.whatif.priority is row.recorded.priority, row
        assert row.whatif.max_priority is row.recorded.max_priority, row
        assert row.dt_s is not None
        if row.rule_id in CHARTED:
            # Live, a chart entry reaches the engine after its durable commit: at SPEED x, tens of ms of
            # commit are seconds of device time (the entry's own time is what the what-if uses).
            assert -30.0 <= row.dt_s <= 0.0, row
        else:
            assert abs(row.dt_s) <= 0.01 * SPEED + 0.1, row  # one simulation step of the device clock
    assert res.inputs > len(rec.readings) / 20  # grouped per device per observation time


def test_what_if_is_pure_and_cut_recordings_reproduce_too(recorded: Recorded) -> None:
    rec = recorded.rec
    before = (len(rec.readings), len(rec.alarm_events), rec.session.phase)
    cut = _first(rec, _minutes_after_first(rec, "spo2_low"))
    a = what_if(cut, PROFILE)
    assert (len(rec.readings), len(rec.alarm_events), rec.session.phase) == before
    assert a.counts.both >= 1 and a.counts.only_recorded == 0 and a.counts.only_whatif == 0

    def key(rows: list[MatchRow]) -> list[tuple[str, float, str]]:
        return [(r.rule_id, r.t, r.whatif.priority.value) for r in rows if r.whatif is not None]

    assert key(a.rows) == key(recorded.same.rows)[: len(a.rows)]


def test_charted_scores_and_phases_reach_the_engine(recorded: Recorded) -> None:
    inputs = [inp for _, inp in recorded_inputs(recorded.rec)]
    kinds = {inp.kind for inp in inputs}
    assert {"readings", "phase", "baseline", "chart"} <= kinds
    phases = [inp.phase for inp in inputs if isinstance(inp, PhaseInput)]
    assert phases[:2] == [Phase.BASELINE, Phase.PREMEDICATION] and Phase.RECOVERY in phases
    times = [t for t, _ in recorded_inputs(recorded.rec)]
    assert times == sorted(times)


def test_ticks_run_the_timers_through_a_gap_in_the_data(recorded: Recorded) -> None:
    """With two minutes of readings missing, the what-if ticks through the gap and SpO2 goes stale."""
    rec = _first(recorded.rec, 16)
    gap_from, gap_to = rec.start + timedelta(minutes=10), rec.start + timedelta(minutes=12)
    holed = dataclasses.replace(rec, readings=[r for r in rec.readings if not gap_from <= r.t_device < gap_to])
    res = what_if(holed, PROFILE)
    assert 110 <= res.ticks <= 125  # about one per second of the gap, none between 1 Hz readings
    stale = [o for o in res.whatif if o.rule_id == "spo2_stale"]
    assert len(stale) == 1 and stale[0].cleared_at is not None
    assert 29 <= (stale[0].raised_at - gap_from).total_seconds() <= 33  # SpO2 NOT UPDATED after 30 s
    assert stale[0].cleared_at - gap_to < timedelta(seconds=3)
    assert [r.match for r in res.rows if r.rule_id == "spo2_stale"] == ["only_whatif"]


def test_recorded_acknowledgements_are_replayed(recorded: Recorded) -> None:
    """An acknowledged latched HIGH is acknowledged in the what-if run too (else it would hide later ones)."""
    rec = recorded.rec
    raised = next(e for e in rec.alarm_events if e.kind.value == "raised" and e.rule_id == "resp_depression")
    ack = AlarmEvent(
        kind=EventKind.ACKNOWLEDGED, t=raised.t + timedelta(seconds=20), rule_id="resp_depression", user="nurse.a"
    )
    cut = _first(rec, (raised.t - rec.start).total_seconds() / 60 + 2)
    events = sorted([*cut.alarm_events, ack], key=lambda e: e.t)
    res = what_if(dataclasses.replace(cut, alarm_events=events), PROFILE)
    occ = next(o for o in res.whatif if o.rule_id == "resp_depression")
    assert [(a.t, a.user) for a in occ.acks] == [(ack.t, "nurse.a")]
    assert occ.acks[0].time_to_ack_s == pytest.approx(20.0, abs=0.01)
    assert "physician" not in occ.escalated_to  # HIGH escalates after 30 s unacknowledged; this one was acked
    unacked = next(o for o in recorded.same.whatif if o.rule_id == "resp_depression")
    assert "physician" in unacked.escalated_to


def test_charted_scores_follow_corrections_as_the_session_service_does(recorded: Recorded) -> None:
    rec = recorded.rec
    events = list(rec.session.events)
    last = max(i for i, e in enumerate(events) if isinstance(e, ChartEntry) and isinstance(e.item, SedationItem))
    kept = events[: last + 1]  # before discharge: a final session feeds no scores
    latest = kept[-1]
    assert isinstance(latest, ChartEntry)
    older = next(e for e in reversed(kept[:-1]) if isinstance(e, ChartEntry) and isinstance(e.item, SedationItem))
    assert isinstance(older, ChartEntry)
    t = latest.t + timedelta(seconds=30)
    base = {"session_id": rec.session.id, "user": "nurse.b", "t": t}
    late = ChartEntry(
        seq=len(kept), item=SedationItem(moaas=0), observed_at=older.observed_at, corrects=older.seq, **base
    )
    fixed = ChartEntry(
        seq=len(kept) + 1, item=SedationItem(moaas=1), observed_at=latest.observed_at, corrects=latest.seq, **base
    )
    session = workflow.rebuild(rec.session.id, [*kept, late, fixed])
    charts = [
        (tt, inp) for tt, inp in recorded_inputs(dataclasses.replace(rec, session=session)) if inp.kind == "chart"
    ]
    at_t = [inp for tt, inp in charts if tt == t.timestamp()]
    # The correction of an older score does not reach the engine; the correction of the latest does.
    assert [(i.scale.value, i.value) for i in at_t if isinstance(i, ChartInput)] == [("moaas", 1)]


# ---- threshold changes -----------------------------------------------------------------------------------


def test_looser_spo2_threshold_removes_the_spo2_alarm(recorded: Recorded) -> None:
    loose = [
        LevelOverride(rule_id="spo2_low", level_index=0, value=60),
        LevelOverride(rule_id="spo2_low", level_index=1, value=55),
        LevelOverride(rule_id="spo2_low", level_index=2, value=50),
    ]
    rec = _first(recorded.rec, _minutes_after_first(recorded.rec, "spo2_low"))
    res = what_if(rec, apply_overrides(PROFILE, loose))
    spo2 = [r for r in res.rows if r.rule_id == "spo2_low"]
    assert spo2 and all(r.match == "only_recorded" for r in spo2), spo2
    assert not any(o.rule_id == "spo2_low" for o in res.whatif)
    # Other rules are untouched.
    others = [r for r in res.rows if r.rule_id != "spo2_low"]
    assert all(r.match == "both" for r in others), [(r.rule_id, r.match) for r in others if r.match != "both"]


def test_longer_spo2_delay_raises_it_later(recorded: Recorded) -> None:
    rec = _first(recorded.rec, _minutes_after_first(recorded.rec, "spo2_low"))
    slow = apply_overrides(PROFILE, [LevelOverride(rule_id="spo2_low", level_index=0, delay_s=45)])
    res = what_if(rec, slow)
    first_base = min(o.raised_at for o in recorded.same.whatif if o.rule_id == "spo2_low")
    first_slow = min(o.raised_at for o in res.whatif if o.rule_id == "spo2_low")
    assert first_slow > first_base


def test_tighter_hypertension_threshold_adds_alarms(recorded: Recorded) -> None:
    rec = _first(recorded.rec, 20)
    sys_values = [r.value for r in rec.readings if r.param == "nibp_sys" and r.value is not None]
    assert sys_values
    assert _raised(rec, "bp_high") == 0, "pick a limit below the recording's BP for this test"
    limit = min(sys_values) - 1  # every valid systolic reading is now "high"
    tight = apply_overrides(PROFILE, [LevelOverride(rule_id="bp_high", level_index=0, param="nibp_sys", value=limit)])
    res = what_if(rec, tight)
    added = [r for r in res.rows if r.rule_id == "bp_high"]
    assert added and all(r.match == "only_whatif" for r in added), added
    assert added[0].whatif is not None and f"≥ {limit:g}" in added[0].whatif.text
    assert res.counts.only_whatif >= 1 and res.counts.only_recorded == 0


# ---- overrides -------------------------------------------------------------------------------------------


def test_override_applies_to_a_copy_and_revalidates() -> None:
    changed = apply_overrides(
        PROFILE,
        [
            LevelOverride(rule_id="bp_high", level_index=0, param="nibp_dia", value=95, delay_s=5),
            LevelOverride(rule_id="hr_high", level_index=1, baseline_pct=20),
        ],
    )
    level = changed.rule("bp_high").levels[0]
    assert isinstance(level.when, AnyCond)
    limits = {c.param: c.value for c in level.when.any if isinstance(c, ValueCond)}
    assert limits == {"nibp_sys": 160, "nibp_dia": 95}  # only the named limit changed
    assert level.delay_s == 5
    hr = changed.rule("hr_high").levels[1].when
    assert isinstance(hr, ValueCond) and hr.baseline_pct == 20 and hr.value is None
    # The original is unchanged.
    orig = PROFILE.rule("bp_high").levels[0]
    assert orig.delay_s == 0 and isinstance(orig.when, AnyCond)
    assert {c.param: c.value for c in orig.when.any if isinstance(c, ValueCond)} == {"nibp_sys": 160, "nibp_dia": 100}
    # A limit kind can be switched (relative to absolute).
    switched = apply_overrides(PROFILE, [LevelOverride(rule_id="hr_high", level_index=1, value=120)]).rule("hr_high")
    cond = switched.levels[1].when
    assert isinstance(cond, ValueCond) and cond.value == 120 and cond.baseline_pct is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"rule_id": "no_such_rule", "value": 1}, "unknown rule 'no_such_rule'"),
        ({"rule_id": "spo2_low", "level_index": 7, "value": 80}, "rule 'spo2_low' level 7: the rule has 3 level(s)"),
        ({"rule_id": "bp_high", "value": 150}, "say which limit to change"),
        ({"rule_id": "bp_high", "param": "hr", "value": 150}, "'hr' is not compared by this level"),
        ({"rule_id": "spo2_probe_off", "value": 3}, "this level has no value limit"),
        ({"rule_id": "spo2_low", "delay_s": 7200}, "field levels[0].delay_s"),
        ({"rule_id": "spo2_low", "delay_s": -1}, "field levels[0].delay_s"),
    ],
)
def test_bad_overrides_are_refused_by_name(override: dict[str, object], message: str) -> None:
    with pytest.raises(OverrideError) as exc:
        apply_overrides(PROFILE, [LevelOverride.model_validate(override)])
    assert message in str(exc.value)


@pytest.mark.parametrize(
    "override",
    [
        {"rule_id": "spo2_low"},  # nothing to change
        {"rule_id": "spo2_low", "value": 90, "baseline_delta": 2},  # two kinds of limit
        {"rule_id": "spo2_low", "threshold": 90},  # unknown field
        {"rule_id": "spo2_low", "value": float("nan")},
        {"rule_id": "spo2_low", "level_index": -1, "value": 90},
        {"rule_id": "spo2_low", "param": "spo2", "delay_s": 5},  # param without a limit
    ],
)
def test_malformed_overrides_fail_validation(override: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WhatIfRequest.model_validate({"overrides": [override]})


def test_profile_view_lists_limits_and_delays() -> None:
    view = profile_view(PROFILE, available=["ketamine_chronic_pain"])
    spo2 = next(r for r in view.rules if r.id == "spo2_low")
    assert [lvl.priority.value for lvl in spo2.levels] == ["medium", "high", "high"]
    assert [lvl.limits[0].value for lvl in spo2.levels] == [92, 90, 85]
    assert [lvl.delay_s for lvl in spo2.levels] == [15, 10, 0]
    bp = next(r for r in view.rules if r.id == "bp_high")
    assert [lim.param for lim in bp.levels[0].limits] == ["nibp_sys", "nibp_dia"]
    rr = next(r for r in view.rules if r.id == "rr_abnormal")
    assert [lim.param for lim in rr.levels[0].limits] == ["rr"]  # the "RR ≥ 1" guard is not offered
    probe = next(r for r in view.rules if r.id == "spo2_probe_off")
    assert probe.levels[0].limits == [] and "SPO2_PROBE_OFF" in probe.levels[0].condition


def test_occurrences_follow_an_alarm_from_raised_to_cleared(recorded: Recorded) -> None:
    rec = recorded.rec
    occ = occurrences(rec.alarm_events, rec.start)
    raised = [e for e in rec.alarm_events if e.kind.value == "raised"]
    assert [o.raised_at for o in occ] == sorted(e.t for e in raised)
    cleared = [e for e in rec.alarm_events if e.kind.value == "cleared"]
    assert sum(o.cleared_at is not None for o in occ) == len(cleared)
    for o in occ:
        if o.cleared_at is not None:
            assert o.duration_s is not None and o.duration_s >= 0


# ---- over HTTP -------------------------------------------------------------------------------------------


async def test_whatif_api(recorded: Recorded, tmp_path: Path) -> None:
    db = tmp_path / "served.sqlite3"
    shutil.copy(recorded.db, db)
    settings = small_settings(tmp_path, bays=1, db_path=db)
    async with running_server(settings) as srv, httpx.AsyncClient(base_url=srv.http, timeout=60) as http:
        r = await http.get("/api/alarm-profile")
        assert r.status_code == 200
        body = r.json()
        assert body["id"] == "ketamine_chronic_pain" and "ketamine_chronic_pain" in body["available"]
        spo2 = next(x for x in body["rules"] if x["id"] == "spo2_low")
        assert spo2["levels"][0]["limits"][0]["value"] == 92 and spo2["levels"][0]["delay_s"] == 15

        url = f"/api/recordings/{recorded.sid}/whatif"
        loose = [{"rule_id": "spo2_low", "level_index": i, "value": 50} for i in range(3)]
        r = await http.post(url, json={"profile": "ketamine_chronic_pain", "overrides": loose})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["requested_profile"] == "ketamine_chronic_pain" and len(out["overrides"]) == 3
        assert out["elapsed_ms"] > 0
        rows = [x for x in out["rows"] if x["rule_id"] == "spo2_low"]
        assert rows and {x["match"] for x in rows} == {"only_recorded"}
        assert all(isinstance(x["t"], float) for x in rows)
        # Everything else is what the same-profile run found, in the same order.
        others = [(x["rule_id"], x["match"], x["t"]) for x in out["rows"] if x["rule_id"] != "spo2_low"]
        same = [(x.rule_id, x.match, x.t) for x in recorded.same.rows if x.rule_id != "spo2_low"]
        assert others == same

        r = await http.post(url, json={"overrides": [{"rule_id": "nope", "value": 1}]})
        assert r.status_code == 422 and r.json()["detail"]["code"] == "invalid_override"
        assert "unknown rule 'nope'" in r.json()["detail"]["reason"]
        r = await http.post(url, json={"overrides": [{"rule_id": "spo2_low", "delay_s": 1e6}]})
        assert r.status_code == 422 and "delay_s" in r.json()["detail"]["reason"]
        r = await http.post(url, json={"overrides": [{"rule_id": "spo2_low", "bogus": 1}]})
        assert r.status_code == 422  # pydantic: extra field
        r = await http.post(url, json={"profile": "../../etc/passwd"})
        assert r.status_code == 400 and r.json()["detail"]["code"] == "unknown_profile"
        r = await http.post(url, json={"profile": "no_such_profile"})
        assert r.status_code == 400
        r = await http.get("/api/alarm-profile", params={"name": "/etc/passwd"})
        assert r.status_code == 400
        r = await http.post("/api/recordings/nosuchsession/whatif", json={})
        assert r.status_code == 404
