"""Export a recorded session: CSV (numerics, alarms, charting), HL7 v2 ORU^R01 and a FHIR R4 Bundle.

Pure functions of a ``SessionRecording`` (``app.recording.load``); no I/O. ``export(rec, fmt)`` gives the
bytes of one format named in ``FORMATS`` (what the API and ``vigil export`` serve).

CSV (RFC 4180, UTF-8, ``\\r\\n`` rows, a header row): times are ISO 8601 UTC (``...+00:00``); with a clinic
time zone a ``time_local`` column follows. Numbers are written with ``repr`` so they read back exactly.
A text cell that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``@``, a tab, or ``-``
followed by something that is not a number) is prefixed with ``'`` (OWASP "CSV injection").

HL7 v2 (``oru.hl7``): one PCD-01 ORU^R01 per observation time and device, built by
``monitors.protocols.encode.encode_oru`` (MDC codes from the parameter catalogue, OBX-6 MDC units with the
UCUM unit as the alternate coding, the patient in PID-3/5/7). Framing: segments end with ``\\r`` as HL7
requires; each message ends with an extra ``\\n``, so the file is one message per line for tools that read
lines (split on ``\\n`` and drop empty lines to get the messages). No MLLP framing.

FHIR (``fhir.json``): a Bundle of type ``collection`` built and validated with ``fhir.resources.R4B``
(FHIR 4.3.0, "R4B"). fhir.resources 8 ships R5 at its top level and R4B and STU3 as subpackages, no pure
4.0.1 module; R4B only changed medication-definition and evidence resources, so the resources used here
(Patient, Encounter, Device, Observation, MedicationAdministration, Bundle) have the R4 shape. Code systems:
LOINC ``http://loinc.org``, ISO/IEEE 11073-10101 MDC ``urn:iso:std:iso:11073:10101``, UCUM
``http://unitsofmeasure.org``. Continuous numerics are exported as one Observation per parameter per
``interval_s`` (the first valid reading of each interval; questionable readings only when no valid one
exists, and then noted); every NIBP measurement is a blood-pressure panel. ``interval_s=0`` exports every
reading that has a value (large: a 90-minute session holds ~30 000 readings).
"""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from app.alarms.model import AlarmEvent, LevelOverride
from app.recording.model import SessionRecording
from app.sessions import dosing
from app.sessions.model import (
    AlarmLimitsSet,
    AssessmentItem,
    BaselineRecorded,
    ChartEntry,
    ChartItem,
    MedicationItem,
    NoteItem,
    PainItem,
    PhaseChanged,
    PumpAction,
    PumpEvent,
    RetractionItem,
    SedationItem,
    SessionCreated,
    SessionEvent,
    SideEffectsItem,
    Vitals,
)
from monitors import parameters
from monitors.models import DeviceAlarm, Quality, Reading
from monitors.parameters import Cadence, Kind, Parameter
from monitors.protocols import encode

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
#: FHIR R4 vital-signs category (http://hl7.org/fhir/R4/observation-vitalsigns.html).
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
#: v3 ActCode AMB = ambulatory, the Encounter.class of an outpatient visit (FHIR R4 Encounter.class binding).
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#: v2 table 0203 identifier type MR = medical record number.
ID_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
#: LOINC 85354-9 "Blood pressure panel with all children optional" is the panel code of the FHIR R4
#: vital-signs blood-pressure profile; its MDC counterpart is the NIBP container used in PCD-01 (encode.py).
BP_PANEL_LOINC = ("85354-9", "Blood pressure panel with all children optional")
#: Default sampling of continuous numerics in the FHIR export (one Observation per parameter per minute).
FHIR_INTERVAL_S = 60.0
#: Stable namespace for the Bundle's urn:uuid ids (uuid5 of the session and the resource key), so that
#: exporting the same session twice gives the same ids.
_NS = uuid.UUID("6f1d6f0e-8a57-4d53-9b0c-7c7e1d1a2b3c")
_MED_UCUM = {"mg": "mg", "mcg": "ug", "g": "g", "mL": "mL"}


# ---- small helpers ---------------------------------------------------------------------------------------


def iso(t: datetime) -> str:
    """ISO 8601 in UTC."""
    return t.astimezone(UTC).isoformat()


def _local(t: datetime, tz: tzinfo) -> str:
    return t.astimezone(tz).isoformat()


def _num(v: float | None) -> str:
    return "" if v is None else repr(float(v))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def safe_cell(text: str) -> str:
    """A text cell a spreadsheet will show as text, never run as a formula."""
    if text and (text[0] in "=+@\t\r" or (text[0] == "-" and not _is_number(text))):
        return "'" + text
    return text


def _csv(header: list[str], rows: Iterable[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _fmt(v: float, decimals: int = 1) -> str:
    """A number for people: no trailing zeros."""
    text = f"{v:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# ---- descriptions (shared with the report) -------------------------------------------------------------------


def describe_vitals(v: Vitals) -> str:
    """``BP 125/80, HR 72, SpO2 98 %, RR 14``: the values that are known."""
    parts: list[str] = []
    if v.sbp is not None or v.dbp is not None:
        sbp = "?" if v.sbp is None else _fmt(v.sbp, 0)
        dbp = "?" if v.dbp is None else _fmt(v.dbp, 0)
        parts.append(f"BP {sbp}/{dbp}")
    if v.hr is not None:
        parts.append(f"HR {_fmt(v.hr, 0)}")
    if v.spo2 is not None:
        parts.append(f"SpO2 {_fmt(v.spo2, 0)} %")
    if v.rr is not None:
        parts.append(f"RR {_fmt(v.rr, 0)}")
    return ", ".join(parts) or "no values"


def describe_item(item: ChartItem, corrects: int | None = None) -> str:
    """One line for a chart item (what the nurse recorded)."""
    if isinstance(item, SedationItem):
        parts = []
        if item.rass is not None:
            parts.append(f"RASS {item.rass:+d}" if item.rass else "RASS 0")
        if item.moaas is not None:
            parts.append(f"MOAA/S {item.moaas}")
        return ", ".join(parts)
    if isinstance(item, PainItem):
        return f"pain NRS {item.nrs}/10"
    if isinstance(item, SideEffectsItem):
        effects = ", ".join(f"{e.value.replace('_', ' ')} ({s.value})" for e, s in item.effects.items()) or "none"
        return effects + (f"; {item.detail}" if item.detail else "")
    if isinstance(item, MedicationItem):
        return (
            f"{item.drug} {_fmt(item.dose, 3)} {item.unit} {item.route.upper()} "
            f"({item.effective_category.value.replace('_', ' ')})"
        )
    if isinstance(item, NoteItem):
        return item.text
    if isinstance(item, AssessmentItem):
        fields = item.model_dump(exclude={"type"}, exclude_none=True)
        return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in fields.items()) or "assessment"
    assert isinstance(item, RetractionItem)
    return f"retracts entry {corrects}: {item.reason}" if corrects is not None else f"retraction: {item.reason}"


def describe_pump(e: PumpEvent, weight_kg: float | None) -> str:
    """One line for an infusion event."""
    if e.action is PumpAction.BOLUS:
        per_kg = f" ({e.bolus_mg / weight_kg:.2f} mg/kg)" if weight_kg else ""
        return f"bolus {_fmt(e.bolus_mg, 1)} mg{per_kg}"
    if e.action in (PumpAction.PAUSE, PumpAction.STOP):
        return e.action.value
    per_kg = f", {e.mg_per_h / weight_kg:.2f} mg/kg/h" if weight_kg else ""
    ml = f", {_fmt(e.ml_per_h, 1)} mL/h" if e.ml_per_h else ""
    return f"{e.action.value} {_fmt(e.mg_per_h, 1)} mg/h{per_kg}{ml}"


def describe_limits(overrides: Sequence[LevelOverride]) -> str:
    """The patient's own alarm limits in words."""
    if not overrides:
        return "alarm limits back to the profile's defaults"
    parts = []
    for o in overrides:
        what = []
        of = f"{o.param} " if o.param else ""
        if o.value is not None:
            what.append(f"{of}limit {_fmt(o.value, 1)}")
        if o.baseline_delta is not None:
            what.append(f"{of}baseline {o.baseline_delta:+g}")
        if o.baseline_pct is not None:
            what.append(f"{of}baseline {o.baseline_pct:+g} %")
        if o.delay_s is not None:
            what.append(f"delay {_fmt(o.delay_s, 0)} s")
        parts.append(f"{o.rule_id} level {o.level_index}: {', '.join(what)}")
    return "patient's own alarm limits: " + "; ".join(parts)


def describe_event(e: SessionEvent, rec: SessionRecording) -> str:
    """One line for any session event."""
    if isinstance(e, AlarmLimitsSet):
        return describe_limits(e.overrides)
    if isinstance(e, ChartEntry):
        return describe_item(e.item, e.corrects)
    if isinstance(e, PumpEvent):
        return describe_pump(e, rec.session.weight_kg)
    if isinstance(e, PhaseChanged):
        out = f"{e.from_phase.value} -> {e.to_phase.value}"
        if e.reason:
            out += f" ({e.reason})"
        if e.overrides:
            out += f"; overridden: {', '.join(e.overrides)} ({e.override_reason or ''})"
        return out
    if isinstance(e, BaselineRecorded):
        weight = f"; weight {_fmt(e.weight_kg, 1)} kg" if e.weight_kg is not None else ""
        return f"baseline ({e.source}): {describe_vitals(e.vitals)}{weight}"
    plan = ""
    if e.plan is not None:
        plan = (
            f"; plan {_fmt(e.plan.dose_mg_per_kg, 3)} mg/kg over {_fmt(e.plan.duration_min, 0)} min "
            f"at {_fmt(e.plan.concentration_mg_per_ml, 2)} mg/mL"
        )
    weight = f"; weight {_fmt(e.weight_kg, 1)} kg" if e.weight_kg is not None else ""
    return f"session opened in {e.bay}{weight}{plan}" + (f"; indication: {e.indication}" if e.indication else "")


# ---- CSV -------------------------------------------------------------------------------------------------------


NUMERIC_COLUMNS = ["time_utc", "device_id", "param", "value", "unit", "quality", "received_utc"]


def numerics_csv(rec: SessionRecording, tz: tzinfo | None = None) -> str:
    """One row per numeric reading, in device-time order."""
    header = list(NUMERIC_COLUMNS)
    if tz is not None:
        header.insert(1, "time_local")

    def row(r: Reading) -> list[str]:
        out = [iso(r.t_device), r.device_id, r.param, _num(r.value), r.unit, r.quality.value, iso(r.t_received)]
        if tz is not None:
            out.insert(1, _local(r.t_device, tz))
        return out

    return _csv(header, (row(r) for r in rec.readings))


ALARM_COLUMNS = [
    "time_utc",
    "source",
    "kind",
    "rule",
    "alarm_id",
    "priority",
    "category",
    "text",
    "user",
    "time_to_ack_s",
    "values",
    "notify",
    "device_id",
]


def alarms_csv(rec: SessionRecording, tz: tzinfo | None = None) -> str:
    """Every alarm event of Vigil's rule engine (raised, acknowledged, escalated, cleared, audio paused...)
    and every alarm the devices reported, in time order. ``source`` says which."""
    header = list(ALARM_COLUMNS)
    if tz is not None:
        header.insert(1, "time_local")
    rows: list[tuple[datetime, int, list[str]]] = []

    def add(t: datetime, order: int, cells: list[str]) -> None:
        if tz is not None:
            cells.insert(1, _local(t, tz))
        rows.append((t, order, cells))

    for i, e in enumerate(rec.alarm_events):
        add(e.t, i, _alarm_row(e))
    for i, a in enumerate(rec.device_alarms):
        add(a.t, len(rec.alarm_events) + i, _device_alarm_row(a))
    rows.sort(key=lambda r: (r[0], r[1]))
    return _csv(header, (cells for _, _, cells in rows))


def _alarm_row(e: AlarmEvent) -> list[str]:
    return [
        iso(e.t),
        "vigil",
        e.kind.value,
        e.rule_id or "",
        e.alarm_id or "",
        e.priority.value if e.priority else "",
        e.category.value if e.category else "",
        safe_cell(e.text),
        safe_cell(e.user or ""),
        _num(e.time_to_ack_s),
        json.dumps(e.values, sort_keys=True) if e.values else "",
        e.notify or "",
        "",
    ]


def _device_alarm_row(a: DeviceAlarm) -> list[str]:
    return [
        iso(a.t),
        "device",
        "raised" if a.active else "cleared",
        safe_cell(a.code),
        "",
        a.priority.value,
        a.alarm_kind.value,
        safe_cell(a.text),
        "",
        "",
        "",
        "",
        a.device_id,
    ]


CHARTING_COLUMNS = [
    "time_utc",
    "recorded_utc",
    "seq",
    "kind",
    "summary",
    "user",
    "corrects",
    "superseded_by",
    "corrected",
    "retracted",
]


def charting_csv(rec: SessionRecording, tz: tzinfo | None = None) -> str:
    """The session record: every chart entry (with corrected / retracted flags) and every workflow event
    (opening, baseline, phase changes, infusion events), by observation time. ``kind`` is the chart item
    type (sedation, pain, side_effects, medication, note, assessment, retraction) or created / baseline /
    phase / pump."""
    s = rec.session
    header = list(CHARTING_COLUMNS)
    if tz is not None:
        header.insert(1, "time_local")
    by_seq = {e.seq: e for e in s.chart}
    rows: list[tuple[datetime, int, list[str]]] = []
    for e in s.events:
        observed = e.observed_at if isinstance(e, ChartEntry) else e.t
        kind = e.item.type if isinstance(e, ChartEntry) else e.kind
        corrected = retracted = False
        superseded_by = s.superseded.get(e.seq) if isinstance(e, ChartEntry) else None
        if superseded_by is not None:
            successor = by_seq.get(superseded_by)
            retracted = successor is not None and isinstance(successor.item, RetractionItem)
            corrected = not retracted
        cells = [
            iso(observed),
            iso(e.t),
            str(e.seq),
            kind,
            safe_cell(describe_event(e, rec)),
            safe_cell(e.user),
            "" if not isinstance(e, ChartEntry) or e.corrects is None else str(e.corrects),
            "" if superseded_by is None else str(superseded_by),
            "yes" if corrected else "",
            "yes" if retracted else "",
        ]
        if tz is not None:
            cells.insert(1, _local(observed, tz))
        rows.append((observed, e.seq, cells))
    rows.sort(key=lambda r: (r[0], r[1]))
    return _csv(header, (cells for _, _, cells in rows))


# ---- HL7 v2 ORU^R01 ----------------------------------------------------------------------------------------------


def oru_messages(rec: SessionRecording, *, sending_app: str = "VIGIL") -> list[bytes]:
    """One PCD-01 ORU^R01 per (observation time, device), in time order; MSH-7 is the observation time so
    the same session always gives the same bytes."""
    groups: dict[tuple[datetime, str], list[Reading]] = {}
    for r in rec.readings:
        groups.setdefault((r.t_device, r.device_id), []).append(r)
    prefix = "".join(c for c in rec.session.id if c.isalnum())[:8] or "VIGIL"
    p = rec.patient
    out: list[bytes] = []
    for n, ((t, device), readings) in enumerate(sorted(groups.items(), key=lambda kv: kv[0]), start=1):
        out.append(
            encode.encode_oru(
                readings,
                device_id=device,
                control_id=f"{prefix}-{n}",
                now=t,
                patient_id=p.identifier,
                patient_id_type="MR",
                patient_name=p.name,
                birth_date=p.birth_date,
                sending_app=sending_app,
                receiving_app="",
                ucum_alternate=True,
            )
        )
    return out


def oru_hl7(rec: SessionRecording) -> bytes:
    """The messages of ``oru_messages``, each followed by ``\\n`` (see the module docstring for the framing)."""
    return b"".join(m + b"\n" for m in oru_messages(rec))


def split_messages(data: bytes) -> list[bytes]:
    """The messages of an ``oru.hl7`` file."""
    return [m for m in data.split(b"\n") if m.strip()]


# ---- FHIR R4 (R4B) ---------------------------------------------------------------------------------------------


def _uuid(rec: SessionRecording, key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, f'{rec.session.id}/{key}')}"


def _ref(url: str, display: str | None = None) -> dict[str, Any]:
    return {"reference": url} | ({"display": display} if display else {})


def _quantity(value: float, ucum: str | None, unit: str | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": _fhir_decimal(value), "unit": unit or ucum}
    if ucum is not None:
        q |= {"system": UCUM, "code": ucum}
    return q


def _fhir_decimal(v: float) -> float | int:
    """FHIR decimals are JSON numbers; keep integers integral and floats short."""
    if math.isfinite(v) and float(v).is_integer():
        return int(v)
    return round(v, 6)


def param_code(p: Parameter) -> dict[str, Any]:
    """LOINC + MDC coding of a catalogue parameter."""
    codings = []
    if p.loinc:
        codings.append({"system": LOINC, "code": p.loinc, "display": p.label})
    codings.append({"system": MDC, "code": str(p.mdc_code), "display": p.mdc_refid})
    return {"coding": codings, "text": p.label}


def _split_code(triplet: str) -> tuple[str, str]:
    code, refid, _ = triplet.split("^")
    return code, refid


def _name(name: str) -> dict[str, Any]:
    parts = name.split()
    out: dict[str, Any] = {"text": name}
    if len(parts) >= 2:
        out |= {"family": parts[-1], "given": parts[:-1]}
    elif parts:
        out |= {"family": parts[0]}
    return out


@dataclass(frozen=True, slots=True)
class _Entry:
    url: str
    resource: dict[str, Any]


def _pick(readings: list[Reading], start: datetime, interval_s: float) -> list[Reading]:
    """Continuous readings of one (device, param): every usable one, or the first valid (else first
    questionable) of each ``interval_s`` window counted from ``start``."""
    usable = [r for r in readings if r.value is not None and r.quality is not Quality.INVALID]
    if interval_s <= 0:
        return usable
    best: dict[int, Reading] = {}
    for r in usable:
        k = math.floor((r.t_device - start).total_seconds() / interval_s)
        cur = best.get(k)
        if cur is None or (cur.quality is not Quality.VALID and r.quality is Quality.VALID):
            best[k] = r
    return [best[k] for k in sorted(best)]


def fhir_bundle(
    rec: SessionRecording, *, interval_s: float = FHIR_INTERVAL_S, generated: datetime | None = None
) -> Bundle:
    """The session as a FHIR R4 (R4B) collection Bundle, validated by fhir.resources."""
    s, p = rec.session, rec.patient
    entries: list[_Entry] = []
    patient_url = _uuid(rec, "patient")
    encounter_url = _uuid(rec, "encounter")
    subject = _ref(patient_url, p.name)
    encounter = _ref(encounter_url)
    entries.append(
        _Entry(
            patient_url,
            {
                "resourceType": "Patient",
                "identifier": [
                    {
                        "type": {"coding": [{"system": ID_TYPE, "code": "MR"}], "text": "clinic identifier (MRN)"},
                        "value": p.identifier,
                    }
                ],
                "name": [_name(p.name)],
                "birthDate": p.birth_date.isoformat(),
            },
        )
    )
    # R4 Encounter.status: "cancelled" is an encounter that ended before it began (aborted before the infusion
    # started); an aborted infusion still happened, so it is "finished" (the abort reason is in the report).
    started = any(e.action is PumpAction.START for e in s.pump)
    if not rec.final:
        status = "in-progress"
    elif s.phase.value == "aborted" and not started:
        status = "cancelled"
    else:
        status = "finished"
    enc: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": status,
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [{"text": "Outpatient IV ketamine infusion"}],
        "identifier": [{"type": {"text": "Vigil session id"}, "value": s.id}],
        "subject": subject,
        "period": {"start": iso(rec.start)} | ({"end": iso(rec.end)} if rec.final else {}),
    }
    created = next((e for e in s.events if isinstance(e, SessionCreated)), None)
    if created is not None and created.indication:
        enc["reasonCode"] = [{"text": created.indication}]
    entries.append(_Entry(encounter_url, enc))

    mds_code, mds_refid = _split_code(encode.MDS_CODE)
    devices = sorted({r.device_id for r in rec.readings} | {st.device_id for st in rec.statuses})
    device_url = {d: _uuid(rec, f"device/{d}") for d in devices}
    for d in devices:
        entries.append(
            _Entry(
                device_url[d],
                {
                    "resourceType": "Device",
                    "identifier": [{"value": d}],
                    "deviceName": [{"name": d, "type": "user-friendly-name"}],
                    "type": {
                        "coding": [{"system": MDC, "code": mds_code, "display": mds_refid}],
                        "text": "multi-parameter physiological monitor",
                    },
                    "patient": subject,
                },
            )
        )

    vital_cat = [{"coding": [{"system": OBS_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}]

    def observation(key: str, t: datetime, device: str, body: dict[str, Any]) -> None:
        entries.append(
            _Entry(
                _uuid(rec, key),
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": vital_cat,
                    "subject": subject,
                    "encounter": encounter,
                    "effectiveDateTime": iso(t),
                    "device": _ref(device_url[device], device),
                }
                | body,
            )
        )

    series: dict[tuple[str, str], list[Reading]] = {}
    nibp: dict[tuple[str, datetime], list[Reading]] = {}
    for r in rec.readings:
        par = parameters.get(r.param)
        if par.kind is not Kind.NUMERIC:
            continue
        if par.group == "nibp":
            nibp.setdefault((r.device_id, r.t_device), []).append(r)
        else:
            series.setdefault((r.device_id, r.param), []).append(r)
    for (device, param), readings in sorted(series.items()):
        par = parameters.get(param)
        episodic = par.cadence is Cadence.EPISODIC
        for r in _pick(readings, rec.start, 0 if episodic else interval_s):
            assert r.value is not None
            body: dict[str, Any] = {"code": param_code(par), "valueQuantity": _quantity(r.value, par.ucum)}
            if r.quality is Quality.QUESTIONABLE:
                body["note"] = [{"text": "questionable quality (as flagged by the device)"}]
            observation(f"obs/{device}/{param}/{iso(r.t_device)}", r.t_device, device, body)
    for (device, t), readings in sorted(nibp.items()):
        components = []
        for r in sorted(readings, key=lambda r: r.param):
            par = parameters.get(r.param)
            comp: dict[str, Any] = {"code": param_code(par)}
            if r.value is None or r.quality is Quality.INVALID:
                comp["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT, "code": "error"}]}
            else:
                comp["valueQuantity"] = _quantity(r.value, par.ucum)
            components.append(comp)
        if all("dataAbsentReason" in c for c in components):
            continue
        panel_code, panel_refid = _split_code(encode.NIBP_CONTAINER)
        code = {
            "coding": [
                {"system": LOINC, "code": BP_PANEL_LOINC[0], "display": BP_PANEL_LOINC[1]},
                {"system": MDC, "code": panel_code, "display": panel_refid},
            ],
            "text": "NIBP",
        }
        observation(f"obs/{device}/nibp/{iso(t)}", t, device, {"code": code, "component": components})

    entries += _medication_administrations(rec, subject, encounter)
    bundle = {
        "resourceType": "Bundle",
        "identifier": {"value": _uuid(rec, "bundle")},
        "type": "collection",
        "timestamp": iso(generated or datetime.now(UTC)),
        "entry": [{"fullUrl": e.url, "resource": e.resource} for e in entries],
    }
    return Bundle.model_validate(bundle)


def _medication_administrations(
    rec: SessionRecording, subject: dict[str, Any], encounter: dict[str, Any]
) -> list[_Entry]:
    """Ketamine: one MedicationAdministration per constant-rate stretch of the infusion (rate and the mg it
    delivered) and one per bolus; other medications from the effective chart (premedication, rescue)."""
    s = rec.session
    out: list[_Entry] = []
    ketamine = {"text": "ketamine (racemic)"}
    weight = s.weight_kg
    conc = s.plan.concentration_mg_per_ml if s.plan else None
    pump = list(s.pump)
    rated = [e for e in pump if e.action is not PumpAction.BOLUS]
    for i, e in enumerate(rated):
        if e.mg_per_h <= 0:
            continue
        nxt = rated[i + 1].t if i + 1 < len(rated) else None
        end = nxt or rec.end
        mg = e.mg_per_h * max(0.0, (end - e.t).total_seconds()) / 3600.0
        per_kg = f" ({e.mg_per_h / weight:.2f} mg/kg/h)" if weight else ""
        dosage: dict[str, Any] = {
            "text": f"IV infusion {_fmt(e.mg_per_h, 2)} mg/h{per_kg}" + (f" of {_fmt(conc, 2)} mg/mL" if conc else ""),
            "route": {"text": "intravenous"},
            "dose": _quantity(mg, "mg"),
            "rateQuantity": _quantity(e.mg_per_h, "mg/h"),
        }
        out.append(
            _Entry(
                _uuid(rec, f"ketamine/{e.seq}"),
                {
                    "resourceType": "MedicationAdministration",
                    "status": "completed" if nxt is not None or rec.final else "in-progress",
                    "medicationCodeableConcept": ketamine,
                    "subject": subject,
                    "context": encounter,
                    "effectivePeriod": {"start": iso(e.t)}
                    | ({"end": iso(end)} if nxt is not None or rec.final else {}),
                    "performer": [{"actor": {"display": e.user}}],
                    "dosage": dosage,
                },
            )
        )
    for e in pump:
        if e.action is not PumpAction.BOLUS:
            continue
        out.append(
            _Entry(
                _uuid(rec, f"ketamine/{e.seq}"),
                {
                    "resourceType": "MedicationAdministration",
                    "status": "completed",
                    "medicationCodeableConcept": ketamine,
                    "subject": subject,
                    "context": encounter,
                    "effectiveDateTime": iso(e.t),
                    "performer": [{"actor": {"display": e.user}}],
                    "dosage": {
                        "text": "IV bolus",
                        "route": {"text": "intravenous"},
                        "dose": _quantity(e.bolus_mg, "mg"),
                    },
                },
            )
        )
    for c in s.effective_chart():
        if not isinstance(c.item, MedicationItem):
            continue
        m = c.item
        out.append(
            _Entry(
                _uuid(rec, f"chart/{c.seq}"),
                {
                    "resourceType": "MedicationAdministration",
                    "status": "completed",
                    "medicationCodeableConcept": {"text": m.drug},
                    "subject": subject,
                    "context": encounter,
                    "effectiveDateTime": iso(c.observed_at),
                    "performer": [{"actor": {"display": c.user}}],
                    "dosage": {
                        "text": describe_item(m),
                        "route": {"text": m.route},
                        "dose": _quantity(m.dose, _MED_UCUM.get(m.unit), m.unit),
                    },
                },
            )
        )
    return out


def fhir_json(rec: SessionRecording, *, interval_s: float = FHIR_INTERVAL_S, generated: datetime | None = None) -> str:
    """The Bundle as FHIR JSON."""
    return fhir_bundle(rec, interval_s=interval_s, generated=generated).model_dump_json(indent=1)


def ketamine_totals(rec: SessionRecording) -> dosing.DoseTotals:
    """Ketamine given over the session (infusion + boluses) up to its end."""
    conc = rec.session.plan.concentration_mg_per_ml if rec.session.plan else None
    return dosing.totals(rec.session.pump, rec.end, conc)


# ---- formats ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Format:
    """One export format: its media type and how to make it."""

    name: str
    media_type: str
    make: Callable[[SessionRecording, tzinfo | None], bytes]
    description: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("numerics.csv", "text/csv; charset=utf-8", lambda r, tz: numerics_csv(r, tz).encode(), "numerics"),
        Format("alarms.csv", "text/csv; charset=utf-8", lambda r, tz: alarms_csv(r, tz).encode(), "alarm events"),
        Format("charting.csv", "text/csv; charset=utf-8", lambda r, tz: charting_csv(r, tz).encode(), "session record"),
        # The media type of HL7 v2 ER7 text over HTTP (HL7 "HL7 over HTTP" specification).
        Format("oru.hl7", "x-application/hl7-v2+er7; charset=utf-8", lambda r, tz: oru_hl7(r), "HL7 v2 ORU^R01"),
        Format("fhir.json", "application/fhir+json", lambda r, tz: fhir_json(r).encode(), "FHIR R4 Bundle"),
    )
}


def export(rec: SessionRecording, fmt: str, tz: tzinfo | None = None) -> bytes:
    """The bytes of one format of ``FORMATS`` (KeyError names the unknown format)."""
    try:
        f = FORMATS[fmt]
    except KeyError:
        raise KeyError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})") from None
    return f.make(rec, tz)


def filename(rec: SessionRecording, suffix: str) -> str:
    """``vigil-<session>-<yyyymmdd>-<suffix>``: no patient identifiers in file names."""
    sid = "".join(c for c in rec.session.id if c.isalnum() or c in "-_")[:32] or "session"
    return f"vigil-{sid}-{rec.start.astimezone(UTC):%Y%m%d}-{suffix}"


def age_years(born: date, on: datetime) -> int:
    """Age in whole years on a day."""
    d = on.date()
    return d.year - born.year - ((d.month, d.day) < (born.month, born.day))
