"""Session export (app/recording/export.py) and report (app/recording/report.py), read back from a real SQLite
store: CSV round trips, HL7 v2 ORU^R01 parsed by python-hl7 and by our own PCD-01 decoder, the FHIR R4B
Bundle re-parsed by fhir.resources, the HTML report's escaping, and ``vigil report`` / ``vigil export``.

Two recordings: a hand-written session (every kind of chart entry, a correction and a retraction, a bolus, a
rate change, questionable and invalid readings, alarms with acknowledgements, a device alarm, hostile text)
written through the store, and a simulated session recorded at high speed with ``record_simulated_session``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape as _e
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import hl7
import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from app.alarms.model import AlarmEvent, EventKind, Phase
from app.recording import export, report
from app.recording.load import load_recording
from app.recording.model import SessionRecording
from app.sessions.model import (
    MedicationItem,
    NoteItem,
    PainItem,
    PumpAction,
    RecordBaseline,
    RetractionItem,
    SedationItem,
    Severity,
    SideEffect,
    SideEffectsItem,
)
from app.store.base import Record
from app.store.sqlite import SQLiteStore
from monitors import parameters
from monitors.models import AlarmKind, DeviceAlarm, DeviceState, DeviceStatus, Priority, Quality, Reading
from monitors.protocols import pcd01
from monitors.protocols.hl7 import parse as parse_hl7
from tests.conftest import REPO, RecordedSession, running_server, small_settings
from tests.sessions.helpers import (
    DOCTOR,
    GOOD_BASELINE,
    at,
    chart_recovered,
    drive,
    good_vitals,
    new_run,
    patient,
)

HOSTILE_NAME = 'Zoë <b>O\'Brien</b> & "Co"'
HOSTILE_NOTE = '=HYPERLINK("http://x") </script><script>alert(1)</script>'
DEVICE = "00A0C9FFFE000001"
NIBP_EVERY_MIN = 5


@dataclass
class Handmade:
    """A hand-written session in a real SQLite store."""

    db: Path
    session_id: str
    rec: SessionRecording
    stored: list[Reading]


def _readings() -> list[Reading]:
    """Every 10 s from minute 0 to 110: HR, PR, SpO2, RR, EtCO2 (one questionable, one invalid), NIBP every
    5 min, times with odd microseconds (HL7 keeps 100 µs)."""
    out: list[Reading] = []
    for k in range(0, 110 * 6 + 1):
        t = at(k / 6) + timedelta(microseconds=123_456)
        rx = t + timedelta(milliseconds=40)
        minute = k / 6
        low = 40 <= minute < 44  # a desaturation during the infusion
        values = {"hr": 70 + k % 7, "pr": 71 + k % 5, "spo2": 86.0 if low else 97.0, "rr": 14.5, "etco2": 38.0}
        for param, v in values.items():
            quality = Quality.VALID
            value: float | None = float(v)
            if param == "spo2" and k == 100:
                quality = Quality.QUESTIONABLE
            if param == "etco2" and k == 101:
                quality, value = Quality.INVALID, None
            unit = parameters.get(param).ucum
            out.append(
                Reading(
                    device_id=DEVICE,
                    param=param,
                    value=value,
                    unit=unit,
                    t_device=t,
                    t_received=rx,
                    quality=quality,
                )
            )
        if k % (NIBP_EVERY_MIN * 6) == 0:
            tn = t + timedelta(seconds=2)
            for param, v in (("nibp_sys", 128.0 + k % 11), ("nibp_dia", 81.0), ("nibp_mean", 96.7)):
                out.append(
                    Reading(
                        device_id=DEVICE,
                        param=param,
                        value=v,
                        unit="mm[Hg]",
                        t_device=tn,
                        t_received=tn,
                        quality="valid",
                    )
                )
    return out


def _alarm_events() -> list[AlarmEvent]:
    raised = at(40.5)
    common = {"rule_id": "spo2_low", "alarm_id": "bay1-1", "row": "1", "category": AlarmKind.PHYSIOLOGICAL}
    return [
        AlarmEvent(
            kind=EventKind.RAISED,
            t=raised,
            priority=Priority.MEDIUM,
            text="SpO₂ LOW 86 < 90",
            values={"spo2": 86.0},
            **common,
        ),
        AlarmEvent(
            kind=EventKind.ESCALATED,
            t=raised + timedelta(seconds=30),
            priority=Priority.HIGH,
            previous_priority=Priority.MEDIUM,
            notify="physician",
            text="SpO₂ LOW 86 < 90",
            **common,
        ),
        AlarmEvent(
            kind=EventKind.ACKNOWLEDGED,
            t=raised + timedelta(seconds=42.5),
            priority=Priority.HIGH,
            user="nurse.n",
            time_to_ack_s=42.5,
            text="SpO₂ LOW 86 < 90",
            **common,
        ),
        AlarmEvent(kind=EventKind.CLEARED, t=at(44.2), priority=Priority.HIGH, text="SpO₂ LOW 86 < 90", **common),
        AlarmEvent(
            kind=EventKind.RAISED,
            t=at(41.6),
            rule_id="spo2_sentinel",
            alarm_id="bay1-2",
            row="1a",
            priority=Priority.INFO,
            category=AlarmKind.ADVISORY,
            text="SENTINEL EVENT: SpO₂",
        ),
        AlarmEvent(kind=EventKind.AUDIO_PAUSED, t=at(40.6), user="nurse.n", due=at(42.6)),
    ]


def _record_handmade(db: Path) -> Handmade:
    run = new_run(patient(name=HOSTILE_NAME, identifier="MRN-0042", allergies=("latex",)))
    run.go(Phase.BASELINE, 1)
    run.do(RecordBaseline(vitals=GOOD_BASELINE), 7)
    run.go(Phase.PREMEDICATION, 8)
    run.chart(MedicationItem(drug="midazolam", dose=2), 8)
    run.chart(MedicationItem(drug="ondansetron", dose=4), 8.5)
    run.chart(SedationItem(rass=0, moaas=5), 9)
    run.go(Phase.INFUSION, 10)
    run.pump(PumpAction.START, 10)
    run.chart(SedationItem(rass=-2, moaas=3), 20)
    wrong = run.chart(PainItem(nrs=8), 25)
    run.chart(PainItem(nrs=3), 26, corrects=wrong.seq)
    bogus = run.chart(SideEffectsItem(effects={SideEffect.NAUSEA: Severity.MILD}), 27)
    run.chart(RetractionItem(reason="wrong patient"), 28, corrects=bogus.seq)
    run.chart(NoteItem(text=HOSTILE_NOTE), 30)
    run.pump(PumpAction.RATE, 35, mg_per_kg_h=0.3)
    run.pump(PumpAction.BOLUS, 36, actor=DOCTOR, bolus_mg=7.0)
    run.pump(PumpAction.STOP, 70)
    chart_recovered(run, 104)
    run.go(Phase.READY_FOR_DISCHARGE, 105, vitals=good_vitals(105))
    run.go(Phase.DISCHARGED, 108)
    readings = _readings()
    device_alarm = DeviceAlarm(
        device_id=DEVICE, code="MDC_EVT_PROBE_OFF", priority=Priority.LOW, text="-probe off", t=at(50)
    )
    status = DeviceStatus(device_id=DEVICE, state=DeviceState.STALE, since=at(60), detail="no data for 3 s")

    async def write() -> SessionRecording:
        store = SQLiteStore(db)
        await store.open()
        try:
            records = [Record(None, run.patient)]
            records += [Record("bay1", e) for e in run.state.events]
            records += [Record("bay1", r) for r in readings]
            records += [Record("bay1", e) for e in _alarm_events()]
            records += [Record("bay1", device_alarm), Record("bay1", status)]
            await store.append(records)
            # another bay's data in the same window must not leak into the session
            other = readings[0].model_copy(update={"device_id": "other-monitor"})
            await store.append([Record("bay2", other)])
            return await load_recording(store, run.state.id)
        finally:
            await store.close()

    rec = asyncio.run(write())
    return Handmade(db=db, session_id=run.state.id, rec=rec, stored=readings)


@pytest.fixture(scope="module")
def handmade(tmp_path_factory: pytest.TempPathFactory) -> Handmade:
    return _record_handmade(tmp_path_factory.mktemp("handmade") / "handmade.sqlite3")


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


# ---- CSV -------------------------------------------------------------------------------------------------------


def test_numerics_csv_round_trip_equals_the_store(handmade: Handmade) -> None:
    rec = handmade.rec
    # the session's window of bay1 (readings go on after the discharge; bay2's reading is not the session's)
    inside = [r for r in handmade.stored if rec.start <= r.t_device <= rec.end]
    assert len(rec.readings) == len(inside) < len(handmade.stored)
    text = export.numerics_csv(rec, ZoneInfo("Europe/Paris"))
    rows = _rows(text)
    assert list(rows[0]) == ["time_utc", "time_local", *export.NUMERIC_COLUMNS[1:]]
    assert len(rows) == len(rec.readings)
    for row, r in zip(rows, rec.readings, strict=True):
        assert datetime.fromisoformat(row["time_utc"]) == r.t_device
        assert datetime.fromisoformat(row["time_local"]) == r.t_device
        assert row["time_local"].endswith("+01:00")  # January in Paris
        assert datetime.fromisoformat(row["received_utc"]) == r.t_received
        assert (row["device_id"], row["param"], row["unit"], row["quality"]) == (
            r.device_id,
            r.param,
            r.unit,
            r.quality.value,
        )
        assert (float(row["value"]) if row["value"] else None) == r.value
    # and the store's rows are the readings that were written
    key = sorted((r.t_device, r.param, r.value, r.quality) for r in inside)
    assert sorted((r.t_device, r.param, r.value, r.quality) for r in rec.readings) == key
    assert {"questionable", "invalid"} <= {row["quality"] for row in rows}
    assert "time_local" not in _rows(export.numerics_csv(rec))[0]


def test_alarms_csv_lists_every_event_with_time_to_ack(handmade: Handmade) -> None:
    rec = handmade.rec
    rows = _rows(export.alarms_csv(rec))
    assert len(rows) == len(rec.alarm_events) + len(rec.device_alarms) == 7
    times = [datetime.fromisoformat(r["time_utc"]) for r in rows]
    assert times == sorted(times)
    ack = next(r for r in rows if r["kind"] == "acknowledged")
    assert (ack["rule"], ack["user"], float(ack["time_to_ack_s"]), ack["priority"]) == (
        "spo2_low",
        "nurse.n",
        42.5,
        "high",
    )
    raised = next(r for r in rows if r["kind"] == "raised" and r["source"] == "vigil" and r["rule"] == "spo2_low")
    assert json.loads(raised["values"]) == {"spo2": 86.0}
    assert raised["text"] == "SpO₂ LOW 86 < 90"
    device = next(r for r in rows if r["source"] == "device")
    assert (device["rule"], device["device_id"], device["kind"]) == ("MDC_EVT_PROBE_OFF", DEVICE, "raised")
    assert device["text"] == "'-probe off"  # would be a formula in a spreadsheet
    esc = next(r for r in rows if r["kind"] == "escalated")
    assert esc["notify"] == "physician"


def test_charting_csv_flags_corrections_and_retractions(handmade: Handmade) -> None:
    rec = handmade.rec
    rows = _rows(export.charting_csv(rec))
    assert len(rows) == len(rec.session.events)
    by_seq = {int(r["seq"]): r for r in rows}
    times = [datetime.fromisoformat(r["time_utc"]) for r in rows]
    assert times == sorted(times)
    wrong = next(r for r in rows if r["summary"] == "pain NRS 8/10")
    fixed = next(r for r in rows if r["summary"] == "pain NRS 3/10")
    assert (wrong["corrected"], wrong["retracted"], wrong["superseded_by"]) == ("yes", "", fixed["seq"])
    assert fixed["corrects"] == wrong["seq"]
    nausea = next(r for r in rows if r["kind"] == "side_effects" and "nausea" in r["summary"])
    assert (nausea["retracted"], nausea["corrected"]) == ("yes", "")
    retraction = by_seq[int(nausea["superseded_by"])]
    assert retraction["kind"] == "retraction" and "wrong patient" in retraction["summary"]
    note = next(r for r in rows if r["kind"] == "note")
    assert note["summary"] == "'" + HOSTILE_NOTE  # kept whole, but never run as a formula
    kinds = Counter(r["kind"] for r in rows)
    assert (
        next(r for r in rows if r["kind"] == "baseline")["summary"] == "baseline (manual): BP 125/80, HR 72, SpO2 98 %"
    )
    assert kinds["pump"] == 4 and kinds["phase"] == 6 and kinds["medication"] == 2 and kinds["created"] == 1
    assert any(r["kind"] == "pump" and r["summary"].startswith("bolus 7 mg") for r in rows)
    assert all(r["user"] for r in rows)


# ---- HL7 v2 --------------------------------------------------------------------------------------------------


def test_oru_parses_with_python_hl7_and_decodes_back_to_the_readings(handmade: Handmade) -> None:
    rec = handmade.rec
    data = export.oru_hl7(rec)
    messages = export.split_messages(data)
    groups = {(r.t_device, r.device_id) for r in rec.readings}
    assert len(messages) == len(groups)
    assert all(m.endswith(b"\r") and b"\n" not in m for m in messages)
    control_ids = set()
    decoded: list[Reading] = []
    for raw in messages:
        msg = hl7.parse(raw.decode("utf-8"))
        assert str(msg.segment("MSH")[9]) == "ORU^R01^ORU_R01"
        control_ids.add(str(msg.segment("MSH")[10]))
        pid = msg.segment("PID")
        assert str(pid[3][0][0]) == "MRN-0042" and str(pid[3][0][4]) == "MR"
        assert str(pid[7]) == "19700101"
        d = pcd01.decode(raw, received=datetime.now(UTC))
        assert d.message_type == ("ORU", "R01") and not d.unknown and d.patient_id == "MRN-0042"
        decoded += [it for it in d.items if isinstance(it, Reading)]
    assert len(control_ids) == len(messages)
    # PID-5 carries the name (escaped) and reads back whole
    first = parse_hl7(messages[0].decode())
    pid5 = first.segment("PID")
    assert pid5 is not None
    assert " ".join(reversed([first.encoding.unescape(c) for c in pid5.raw(5).split("^")])) == HOSTILE_NAME
    assert len(decoded) == len(rec.readings)

    def key(r: Reading) -> tuple[object, ...]:
        # HL7 DTM keeps 100 µs (encode.dtm)
        t = r.t_device.replace(microsecond=r.t_device.microsecond // 100 * 100)
        return (t, r.device_id, r.param, r.value, r.unit, r.quality)

    assert sorted(map(key, decoded), key=repr) == sorted(map(key, rec.readings), key=repr)
    # the unit: MDC code with the UCUM unit as the alternate coding
    obx = next(s for s in first.segments("OBX") if "147842" in s.raw(3))
    assert obx.raw(6) == "264864^MDC_DIM_BEAT_PER_MIN^MDC^/min^/min^UCUM"


# ---- FHIR ------------------------------------------------------------------------------------------------------


def check_fhir(text: str, rec: SessionRecording) -> tuple[Counter[str], list[dict[str, Any]]]:
    """Parse the Bundle back with fhir.resources (R4B) and check every resource's codes and references;
    returns the Observations per LOINC code and the resources as JSON."""
    bundle = Bundle.model_validate_json(text)
    assert bundle.type == "collection"
    doc = json.loads(text)
    res: list[dict[str, Any]] = [e["resource"] for e in doc["entry"]]
    # each entry parsed as the R4B class its resourceType names
    assert [type(e.resource).__name__ for e in bundle.entry or []] == [r["resourceType"] for r in res]
    urls = [e["fullUrl"] for e in doc["entry"]]
    assert len(set(urls)) == len(urls) and all(u.startswith("urn:uuid:") for u in urls)
    kinds = Counter(r["resourceType"] for r in res)
    assert kinds["Patient"] == kinds["Encounter"] == 1
    assert kinds["Device"] == len({r.device_id for r in rec.readings} | {st.device_id for st in rec.statuses})
    patient_url, encounter_url = (
        next(u for u, r in zip(urls, res, strict=True) if r["resourceType"] == k) for k in ("Patient", "Encounter")
    )
    devices = {u for u, r in zip(urls, res, strict=True) if r["resourceType"] == "Device"}
    pat = next(r for r in res if r["resourceType"] == "Patient")
    assert pat["name"][0]["text"] == rec.patient.name and pat["identifier"][0]["value"] == rec.patient.identifier
    enc = next(r for r in res if r["resourceType"] == "Encounter")
    assert enc["class"]["code"] == "AMB" and enc["subject"]["reference"] == patient_url
    assert datetime.fromisoformat(enc["period"]["start"]) == rec.start
    by_loinc: Counter[str] = Counter()
    for o in (r for r in res if r["resourceType"] == "Observation"):
        codings = {c["system"]: c["code"] for c in o["code"]["coding"]}
        assert set(codings) == {export.LOINC, export.MDC}
        by_loinc[codings[export.LOINC]] += 1
        assert o["category"][0]["coding"][0]["code"] == "vital-signs" and o["status"] == "final"
        assert o["subject"]["reference"] == patient_url and o["encounter"]["reference"] == encounter_url
        assert o["device"]["reference"] in devices
        assert rec.start <= datetime.fromisoformat(o["effectiveDateTime"]) <= rec.end
        if codings[export.LOINC] == export.BP_PANEL_LOINC[0]:
            assert codings[export.MDC] == "150020"
            comp = {c["code"]["coding"][0]["code"]: c.get("valueQuantity") for c in o["component"]}
            assert set(comp) == {"8480-6", "8462-4", "8478-0"}
            assert all(q is None or (q["system"] == export.UCUM and q["code"] == "mm[Hg]") for q in comp.values())
        else:
            q = o["valueQuantity"]
            par = parameters.by_loinc(codings[export.LOINC])
            assert par is not None and q["system"] == export.UCUM and q["code"] == par.ucum
            assert codings[export.MDC] == str(par.mdc_code)
            assert par.is_plausible(q["value"])
    for m in (r for r in res if r["resourceType"] == "MedicationAdministration"):
        assert m["subject"]["reference"] == patient_url and m["context"]["reference"] == encounter_url
        assert m["status"] in ("completed", "in-progress")
        dose = m["dosage"]["dose"]
        assert dose["value"] > 0 and (dose.get("system") in (None, export.UCUM))
    return by_loinc, res


def test_fhir_bundle_validates_and_carries_the_session(handmade: Handmade) -> None:
    rec = handmade.rec
    text = export.fhir_json(rec, generated=at(120))
    by_loinc, res = check_fhir(text, rec)
    assert export.fhir_json(rec, generated=at(120)) == text  # stable ids: the same session exports the same
    assert next(r for r in res if r["resourceType"] == "Patient")["name"][0]["text"] == HOSTILE_NAME
    enc = next(r for r in res if r["resourceType"] == "Encounter")
    assert enc["status"] == "finished" and datetime.fromisoformat(enc["period"]["end"]) == at(108)
    minutes = (rec.end - rec.start).total_seconds() / 60
    nibp = len({r.t_device for r in rec.readings if r.param == "nibp_sys"})
    assert by_loinc["85354-9"] == nibp  # every NIBP measurement
    for loinc in ("8867-4", "59408-5", "9279-1", "19889-5", "8889-8"):
        assert by_loinc[loinc] == pytest.approx(minutes, abs=2)  # one per minute (FHIR_INTERVAL_S)
    questionable = [r for r in res if r["resourceType"] == "Observation" and "note" in r]
    assert not questionable  # a valid reading of the same minute is preferred

    every = export.fhir_bundle(rec, interval_s=0)  # validated on construction (serialising 3000 is slow)
    n_every = sum(1 for e in every.entry or [] if isinstance(e.resource, Observation))
    usable = [r for r in rec.readings if r.value is not None and not r.param.startswith("nibp")]
    assert n_every == len(usable) + nibp

    meds = [r for r in res if r["resourceType"] == "MedicationAdministration"]
    ketamine = [m for m in meds if "ketamine" in m["medicationCodeableConcept"]["text"]]
    assert len(ketamine) == 3  # start, rate change, bolus
    total = sum(m["dosage"]["dose"]["value"] for m in ketamine)
    assert total == pytest.approx(export.ketamine_totals(rec).total_mg, rel=1e-5)
    rates = sorted(m["dosage"]["rateQuantity"]["value"] for m in ketamine if "rateQuantity" in m["dosage"])
    assert rates == pytest.approx([0.3 * 70, 0.5 * 70])  # PLAN 0.5 mg/kg over 60 min, then 0.3 mg/kg/h; 70 kg
    assert all(m["dosage"]["rateQuantity"]["code"] == "mg/h" for m in ketamine if "rateQuantity" in m["dosage"])
    others = sorted(m["medicationCodeableConcept"]["text"] for m in meds if m not in ketamine)
    assert others == ["midazolam", "ondansetron"]


# ---- report ----------------------------------------------------------------------------------------------------


def test_report_escapes_people_text_and_has_every_section(handmade: Handmade) -> None:
    html = report.render_report(handmade.rec, tz=ZoneInfo("Europe/Paris"), version="9.9")
    assert "<b>O'Brien</b>" not in html and "<script>alert(1)" not in html
    assert "Zoë &lt;b&gt;O&#x27;Brien&lt;/b&gt;" in html
    assert html.count("</script>") == 2  # plotly.js and the chart: nothing from the session ends a script
    for section in ("doses", "phases", "trends", "alarms", "charting", "discharge"):
        assert f"<section class='{section}'" in html
    assert "Generated by Vigil 9.9 — secondary display record; the bedside monitor is the primary record" in html
    assert "src=" not in html.split("<body>", 1)[1]  # nothing to fetch
    assert re.findall(r"<link[^>]*>", html) == ["<link rel='icon' href='data:,'>"]
    assert "times in Europe/Paris" in html and "10:40:30" in html  # 09:40:30 UTC alarm shown in Paris time
    assert "42 s" in html  # time to acknowledge
    assert "SENTINEL EVENT" in html
    total = export.ketamine_totals(handmade.rec).total_mg
    assert f"{total:.1f}".rstrip("0").rstrip(".") + " mg" in html


def test_empty_sessions_export_and_report() -> None:
    """A session aborted before anything was recorded, and one still open in its baseline: nothing breaks."""
    aborted = drive(Phase.ABORTED)
    open_run = drive(Phase.BASELINE)
    for run, final, status in ((aborted, True, "cancelled"), (open_run, False, "in-progress")):
        s = run.state
        assert s.created_at is not None
        rec = SessionRecording(session=s, patient=run.patient, bay=s.bay, start=s.created_at, end=at(30), final=final)
        for fmt in ("numerics.csv", "alarms.csv"):
            assert len(_rows(export.export(rec, fmt).decode())) == 0
        assert len(_rows(export.charting_csv(rec))) == len(s.events)
        assert export.oru_hl7(rec) == b""
        _, res = check_fhir(export.fhir_json(rec), rec)
        assert next(r for r in res if r["resourceType"] == "Encounter")["status"] == status
        assert not any(r["resourceType"] in ("Observation", "MedicationAdministration") for r in res)
        html = report.render_report(rec)
        assert "Ketamine given" in html and ("aborted: patient declined" in html) is final
        assert "Discharge criteria not reached" in html


# ---- a simulated session, recorded through the real pipeline ------------------------------------------------------


@dataclass
class Simulated:
    db: Path
    session_id: str
    rec: SessionRecording


@pytest.fixture(scope="module")
def simulated(recorded_session: RecordedSession) -> Simulated:
    """The shared over-sedation recording (tests/conftest.py: ``record_simulated_session`` at high speed)."""

    return Simulated(recorded_session.db, recorded_session.session_id, recorded_session.load())


async def test_simulated_session_exports_equal_the_store(simulated: Simulated) -> None:
    rec = simulated.rec
    assert rec.final and len(rec.readings) > 1000 and rec.alarm_events
    store = SQLiteStore(simulated.db)
    await store.open()
    try:
        stored = [s.reading for s in await store.readings(bay=rec.bay, since=rec.start, until=rec.end, limit=10**6)]
        logged = await store.alarm_events(bay=rec.bay, since=rec.start, until=rec.end, limit=10**5, oldest_first=True)
        device_alarms = await store.device_alarms(bay=rec.bay, since=rec.start, until=rec.end)
    finally:
        await store.close()

    # CSV, written and read back, equals the store's rows
    rows = _rows(export.numerics_csv(rec))
    assert len(rows) == len(stored)
    for row, r in zip(rows, stored, strict=True):
        assert datetime.fromisoformat(row["time_utc"]) == r.t_device
        assert (float(row["value"]) if row["value"] else None) == r.value
        assert (row["param"], row["unit"], row["quality"], row["device_id"]) == (
            r.param,
            r.unit,
            r.quality.value,
            r.device_id,
        )
    alarm_rows = [r for r in _rows(export.alarms_csv(rec)) if r["source"] == "vigil"]
    assert [(datetime.fromisoformat(r["time_utc"]), r["kind"], r["alarm_id"]) for r in alarm_rows] == [
        (e.t, e.kind.value, e.alarm_id or "") for _, e in logged
    ]
    assert len(_rows(export.alarms_csv(rec))) == len(logged) + len(device_alarms)
    assert len(_rows(export.charting_csv(rec))) == len(rec.session.events)

    # HL7 out decodes (python-hl7 and our PCD-01 decoder) to the same readings
    decoded: list[Reading] = []
    messages = export.split_messages(export.oru_hl7(rec))
    for raw in messages[::20] + messages[-1:]:  # python-hl7 takes ~10 ms a message: every 20th (all: above)
        assert str(hl7.parse(raw.decode()).segment("PID")[3][0][0]) == rec.patient.identifier
    for raw in messages:
        decoded += [it for it in pcd01.decode(raw, received=rec.end).items if isinstance(it, Reading)]

    def key(r: Reading) -> tuple[object, ...]:
        t = r.t_device.replace(microsecond=r.t_device.microsecond // 100 * 100)
        return (t, r.device_id, r.param, r.value, r.quality)

    assert Counter(map(key, decoded)) == Counter(map(key, stored))

    # FHIR: validates, one Observation per vital sign per minute, every NIBP, the ketamine and the midazolam
    by_loinc, res = check_fhir(export.fhir_json(rec), rec)
    minutes = (rec.end - rec.start).total_seconds() / 60
    for loinc in ("8867-4", "59408-5", "9279-1", "19889-5"):
        assert by_loinc[loinc] == pytest.approx(minutes, abs=2)
    assert by_loinc["85354-9"] == len({r.t_device for r in stored if r.param == "nibp_sys"}) > 10
    meds = [r for r in res if r["resourceType"] == "MedicationAdministration"]
    ketamine = sum(m["dosage"]["dose"]["value"] for m in meds if "ketamine" in m["medicationCodeableConcept"]["text"])
    assert ketamine == pytest.approx(export.ketamine_totals(rec).total_mg, rel=1e-5) and ketamine > 0
    assert any(m["medicationCodeableConcept"]["text"] == "midazolam" for m in meds)


async def test_export_routes_over_http(simulated: Simulated, recorded_session: RecordedSession, tmp_path: Path) -> None:
    rec, sid = simulated.rec, simulated.session_id
    expected = {fmt: export.export(rec, fmt) for fmt in export.FORMATS if fmt != "fhir.json"}
    db = recorded_session.copy_to(tmp_path / "vigil.sqlite3")  # the server writes to its store
    day = rec.start.strftime("%Y%m%d")
    settings = small_settings(tmp_path, bays=1, monitors=[], db_path=db)
    async with running_server(settings) as srv, httpx.AsyncClient(base_url=srv.http, timeout=60) as client:
        for fmt, f in export.FORMATS.items():
            r = await client.get(f"/api/recordings/{sid}/export/{fmt}")
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == f.media_type
            assert r.headers["content-disposition"] == f'attachment; filename="vigil-{sid}-{day}-{fmt}"'
            if fmt in expected:
                assert r.content == expected[fmt]
            else:
                check_fhir(r.text, rec)
        paris = await client.get(f"/api/recordings/{sid}/export/numerics.csv", params={"tz": "Europe/Paris"})
        assert _rows(paris.text)[0]["time_local"].endswith("+01:00")
        every = await client.get(f"/api/recordings/{sid}/export/fhir.json", params={"interval_s": 600})
        by_loinc, _ = check_fhir(every.text, rec)
        assert by_loinc["8867-4"] == pytest.approx((rec.end - rec.start).total_seconds() / 600, abs=1)
        page = await client.get(f"/api/recordings/{sid}/report.html")
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        assert _e(rec.patient.name) in page.text

        bad = await client.get(f"/api/recordings/{sid}/export/report.pdf")
        assert bad.status_code == 404 and bad.json()["detail"]["code"] == "unknown_format"
        assert "numerics.csv" in bad.json()["detail"]["reason"]
        for url in ("/api/recordings/nosuch/export/fhir.json", "/api/recordings/nosuch/report.html"):
            missing = await client.get(url)
            assert missing.status_code == 404 and missing.json()["detail"]["code"] == "no_such_session"
        zone = await client.get(f"/api/recordings/{sid}/report.html", params={"tz": "Mars/Olympus"})
        assert zone.status_code == 422 and zone.json()["detail"]["code"] == "unknown_time_zone"
        too_fine = await client.get(f"/api/recordings/{sid}/export/fhir.json", params={"interval_s": -1})
        assert too_fine.status_code == 422


# ---- CLI -------------------------------------------------------------------------------------------------------


def _vigil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=60, cwd=REPO)


def test_cli_report_writes_the_file_unknown_session_exits_2(handmade: Handmade, tmp_path: Path) -> None:
    """The real command in a subprocess, as a user runs it."""
    out = tmp_path / "report.html"
    done = _vigil("report", handmade.session_id, "-o", str(out), "--db", str(handmade.db))
    assert done.returncode == 0, done.stderr
    assert "Zoë &lt;b&gt;O&#x27;Brien" in out.read_text(encoding="utf-8")
    missing = tmp_path / "missing.html"
    done = _vigil("report", "nosuchsession", "-o", str(missing), "--db", str(handmade.db))
    assert done.returncode == 2 and "No recorded session 'nosuchsession'" in done.stderr and not missing.exists()


def test_cli_export_formats_and_refusals(
    handmade: Handmade, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """``vigil export`` in process (``app.cli.main``: the subprocess start-up is covered above)."""
    from app.cli import main

    fhir = tmp_path / "bundle.json"
    assert (
        main(["export", handmade.session_id, "--format", "fhir.json", "-o", str(fhir), "--db", str(handmade.db)]) == 0
    )
    Bundle.model_validate_json(fhir.read_text())
    hl7_file = tmp_path / "oru.hl7"
    assert (
        main(["export", handmade.session_id, "--format", "oru.hl7", "-o", str(hl7_file), "--db", str(handmade.db)]) == 0
    )
    assert hl7_file.read_bytes() == export.oru_hl7(handmade.rec)
    capsysbinary.readouterr()
    assert main(["export", handmade.session_id, "--format", "numerics.csv", "-o", "-", "--db", str(handmade.db)]) == 0
    assert len(_rows(capsysbinary.readouterr().out.decode())) == len(handmade.rec.readings)

    missing = tmp_path / "missing.csv"
    assert (
        main(["export", "nosuchsession", "--format", "alarms.csv", "-o", str(missing), "--db", str(handmade.db)]) == 2
    )
    assert "No recorded session 'nosuchsession'" in capsysbinary.readouterr().err.decode()
    with pytest.raises(SystemExit) as bad_format:
        main(["export", handmade.session_id, "--format", "pdf", "-o", str(missing), "--db", str(handmade.db)])
    assert bad_format.value.code == 2 and "invalid choice" in capsysbinary.readouterr().err.decode()
    nope = tmp_path / "nope.sqlite3"
    assert main(["report", handmade.session_id, "-o", str(missing), "--db", str(nope)]) == 2
    assert "no database" in capsysbinary.readouterr().err.decode() and not nope.exists() and not missing.exists()
    assert main(["report", handmade.session_id, "-o", str(missing), "--db", str(handmade.db), "--tz", "Nowhere/X"]) == 2
    assert "Unknown time zone" in capsysbinary.readouterr().err.decode()


def test_time_zone_refusal_and_file_names(handmade: Handmade) -> None:
    from app.api.exports import zone
    from app.sessions.model import Refused

    with pytest.raises(Refused) as info:
        zone("Mars/Olympus")
    assert info.value.status == 422
    assert export.filename(handmade.rec, "fhir.json") == f"vigil-{handmade.session_id}-20260105-fhir.json"
    with pytest.raises(KeyError, match=r"unknown export format 'x\.pdf'"):
        export.export(handmade.rec, "x.pdf")


def test_a_patients_own_alarm_limits_are_described_in_words() -> None:
    from app.alarms.model import LevelOverride
    from app.recording.export import describe_limits

    own = [
        LevelOverride(rule_id="hr_high", value=140, delay_s=20),
        LevelOverride(rule_id="bp_high", param="nibp_sys", baseline_pct=30),
    ]
    assert describe_limits(own) == (
        "patient's own alarm limits: hr_high level 0: limit 140, delay 20 s; bp_high level 0: nibp_sys baseline +30 %"
    )
    assert describe_limits([]) == "alarm limits back to the profile's defaults"
