"""Encoders for device emulators: readings and waveforms → PCD-01 ORU^R01, device alarms → PCD-04 ORU^R40.

The output follows the shapes in PROTOCOLS.md §1 and the published fixtures: MSH (IHE PCD profile in
MSH-21), PID, PV1 (location), then one OBR per block. Every OBR group starts with the MDS row
(``69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC``, OBX-4 ``1.0.0.0``, OBX-11 ``X``) carrying the equipment
id in OBX-18, so :func:`monitors.protocols.pcd01.decode` maps every item back to ``device_id``.
NIBP readings of one measurement (same time) sit under a ``150020^MDC_PRESS_BLD_NONINV^MDC`` container
(``1.0.c`` with SYS/DIA/MEAN at ``1.0.c.1/2/3``). Each waveform chunk gets its own OBR with OBR-7/OBR-8 =
block start/end, an NA OBX with integer samples (unit = catalogue unit, or a UCUM scaled unit such as
``5.mV/2048`` carrying the gain), and an ``MDC_ATTR_SAMP_RATE`` facet (code 0, as in the WCM fixture;
decoders match facets by RefId). Alarm facet codes (68164–68167, 68484, 68485) are those of the GE Mural
sample. Times are written in UTC with ``+0000`` and up to 4 fractional digits (HL7 DTM), so sub-100 µs
detail is truncated. The result is not MLLP-framed (see ``mllp.frame``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from monitors import parameters
from monitors.models import AlarmKind, DeviceAlarm, Priority, Quality, Reading, WaveformChunk
from monitors.protocols import units
from monitors.protocols.hl7 import DEFAULT_ENCODING

_ENC = DEFAULT_ENCODING
_E = _ENC.escape_text
PCD01_PROFILE = "IHE PCD ORU-R01 2006^HL7^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
PCD04_PROFILE = "IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.4.1^ISO"
MDS_CODE = "69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC"
NIBP_CONTAINER = "150020^MDC_PRESS_BLD_NONINV^MDC"
WAVE_OBR4 = "69121^MDC_OBS_WAVE_CTS^MDC"
MONITORING_OBR4 = "182777000^monitoring of patient^SNOMED-CT"
ALARM_OBR4 = "196616^MDC_EVT_ALARM^MDC"
_HEX16 = re.compile(r"^[0-9A-Fa-f]{16}$")
_NIBP_ORDER = {"nibp_sys": 1, "nibp_dia": 2, "nibp_mean": 3}


def dtm(t: datetime) -> str:
    """HL7 DTM in UTC: ``YYYYMMDDHHMMSS[.fff|.ffff]+0000`` (fraction only when non-zero)."""
    if t.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    u = t.astimezone(UTC)
    s = u.strftime("%Y%m%d%H%M%S")
    us = u.microsecond
    if us:
        s += "." + (f"{us // 1000:03d}" if us % 1000 == 0 else f"{us // 100:04d}")
    return s + "+0000"


def number(v: float) -> str:
    """A decimal without exponent that parses back to exactly ``v``."""
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    r = repr(v)
    if "e" in r or "E" in r:
        r = format(Decimal(r), "f")  # exact expansion of the shortest repr: parses back to v
    return r


def _hd(app: str, device_id: str) -> str:
    kind = "EUI-64" if _HEX16.match(device_id) else "L"
    return f"{_E(app)}^{_E(device_id)}^{kind}"


def _ei(device_id: str, app: str) -> str:
    if _HEX16.match(device_id):
        return f"{_E(device_id)}^{_E(app)}^{_E(device_id)}^EUI-64"
    return _E(device_id)


def _msh(
    app: str,
    device_id: str,
    now: datetime,
    trigger: str,
    control_id: str,
    processing_id: str,
    version: str,
    accept_ack_type: str,
    app_ack_type: str,
    charset: str,
    profile: str,
    receiving_app: str,
) -> str:
    fields = [
        "MSH|^~\\&",
        _hd(app, device_id),
        "",
        _E(receiving_app),
        "",
        dtm(now),
        "",
        f"ORU^{trigger}^ORU_{trigger}",
        _E(control_id),
        processing_id,
        version,
        "",
        "",
        accept_ack_type,
        app_ack_type,
        "",
        charset,
        "",
        "",
        profile,
    ]
    return "|".join(fields)


def _pid_pv1(
    patient_id: str | None,
    location: str | None,
    *,
    id_type: str = "PI",
    name: str | None = None,
    birth_date: date | None = None,
) -> list[str]:
    pid = f"PID|||{_E(patient_id)}^^^^{_E(id_type)}" if patient_id else "PID|||"
    if name or birth_date:
        pid += f"||{_xpn(name) if name else ''}||{birth_date.strftime('%Y%m%d') if birth_date else ''}"
    segs = [pid]
    if location:
        segs.append("PV1||I|" + "^".join(_E(c) for c in location.split("^")[:3]))
    return segs


def _xpn(name: str) -> str:
    """PID-5 family^given from one name string: the last word is taken as the family name (joined back with a
    space the name is unchanged)."""
    parts = name.split()
    if len(parts) < 2:
        return _E(name.strip())
    return f"{_E(parts[-1])}^{_E(' '.join(parts[:-1]))}"


def _unit(p: parameters.Parameter, ucum_alternate: bool = False) -> str:
    if p.mdc_unit_code is not None and p.mdc_unit_refid is not None:
        mdc = f"{p.mdc_unit_code}^{p.mdc_unit_refid}^MDC"
        # CWE components 4-6: the same unit in UCUM as the alternate coding (IHE PCD TF-2 allows both).
        return f"{mdc}^{_E(p.ucum)}^{_E(p.ucum)}^UCUM" if ucum_alternate else mdc
    return f"{_E(p.ucum)}^{_E(p.ucum)}^UCUM"


def _status(r: Reading) -> str:
    if r.value is None or r.quality is Quality.INVALID:
        return "X"
    return "R" if r.quality is Quality.VALID else "P"


def _check_device(device_id: str, item_device: str) -> None:
    if item_device != device_id:
        raise ValueError(f"item of device {item_device!r} in a message for {device_id!r}")


def encode_oru(
    items: Iterable[Reading | WaveformChunk],
    *,
    device_id: str,
    control_id: str,
    now: datetime,
    location: str | None = None,
    patient_id: str | None = None,
    sending_app: str = "VIGIL_EMU",
    receiving_app: str = "VIGIL",
    processing_id: str = "P",
    version: str = "2.6",
    accept_ack_type: str = "",
    app_ack_type: str = "",
    charset: str = "UNICODE UTF-8",
    patient_id_type: str = "PI",
    patient_name: str | None = None,
    birth_date: date | None = None,
    ucum_alternate: bool = False,
) -> bytes:
    """One PCD-01 ORU^R01 (bytes, CR-terminated segments) for ``items`` of one device.

    ``location`` is ``unit^room^bed`` (PV1-3); MSH-15/16 empty means original acknowledgement mode. A
    Reading without a value (or quality invalid) is sent with OBX-11 ``X``; questionable as ``P``.
    ``patient_id_type`` is PID-3's identifier type (PI, MR...), ``patient_name`` and ``birth_date`` fill
    PID-5 and PID-7; ``ucum_alternate`` adds the UCUM unit as OBX-6's alternate coding (for exports).
    """
    readings: list[Reading] = []
    waves: list[WaveformChunk] = []
    for it in items:
        _check_device(device_id, it.device_id)
        if isinstance(it, Reading):
            readings.append(it)
        else:
            waves.append(it)
    if not readings and not waves:
        raise ValueError("nothing to encode")
    segs = [
        _msh(
            sending_app,
            device_id,
            now,
            "R01",
            control_id,
            processing_id,
            version,
            accept_ack_type,
            app_ack_type,
            charset,
            PCD01_PROFILE,
            receiving_app,
        ),
        *_pid_pv1(patient_id, location, id_type=patient_id_type, name=patient_name, birth_date=birth_date),
    ]
    mds_row = f"||{MDS_CODE}|1.0.0.0|||||||X|||||||{_ei(device_id, sending_app)}"
    order = f"{_E(control_id)}^{_E(sending_app)}"
    obr_n = 0
    chan = 0
    if readings:
        obr_n += 1
        t_first = min(r.t_device for r in readings)
        segs.append(f"OBR|{obr_n}|{order}|{order}|{MONITORING_OBR4}|||{dtm(t_first)}")
        n = 1
        segs.append(f"OBX|{n}{mds_row}")
        nibp: dict[datetime, list[Reading]] = {}
        for r in readings:
            if r.param in _NIBP_ORDER:
                nibp.setdefault(r.t_device, []).append(r)
        done_nibp: set[datetime] = set()
        for r in readings:
            p = parameters.get(r.param)
            if r.param in _NIBP_ORDER:
                if r.t_device in done_nibp:
                    continue
                done_nibp.add(r.t_device)
                chan += 1
                n += 1
                segs.append(f"OBX|{n}||{NIBP_CONTAINER}|1.0.{chan}|||||||R|||{dtm(r.t_device)}")
                for m in sorted(nibp[r.t_device], key=lambda x: _NIBP_ORDER[x.param]):
                    mp = parameters.get(m.param)
                    n += 1
                    segs.append(_numeric_obx(n, mp, m, f"1.0.{chan}.{_NIBP_ORDER[m.param]}", ucum_alternate))
                continue
            chan += 1
            n += 1
            segs.append(_numeric_obx(n, p, r, f"1.0.{chan}.1", ucum_alternate))
    for w in waves:
        p = parameters.get(w.channel)
        obr_n += 1
        chan += 1
        t_end = w.t0 + timedelta(seconds=len(w.samples) / w.fs)
        block = f"{_E(control_id)}-{obr_n}^{_E(sending_app)}"
        segs.append(f"OBR|{obr_n}|{block}|{block}|{WAVE_OBR4}|||{dtm(w.t0)}|{dtm(t_end)}")
        segs.append(f"OBX|1{mds_row}")
        if w.gain == 1.0:
            unit = _unit(p)
        else:
            scaled = _E(units.format_scaled(w.gain, "{dimless}" if p.ucum == "1" else p.ucum))
            unit = f"{scaled}^{scaled}^UCUM"
        path = f"1.0.{chan}.1"
        samples = "^".join(str(s) for s in w.samples)
        segs.append(f"OBX|2|NA|{p.mdc_code}^{p.mdc_refid}^MDC|{path}|{samples}|{unit}|||||R|||{dtm(w.t0)}")
        segs.append(f"OBX|3|NM|0^MDC_ATTR_SAMP_RATE^MDC|{path}.1|{number(w.fs)}|264608^MDC_DIM_PER_SEC^MDC|||||R")
    return ("\r".join(segs) + "\r").encode("utf-8")


def _numeric_obx(n: int, p: parameters.Parameter, r: Reading, path: str, ucum_alternate: bool = False) -> str:
    value = "" if r.value is None else number(r.value)
    code = f"{p.mdc_code}^{p.mdc_refid}^MDC"
    return f"OBX|{n}|NM|{code}|{path}|{value}|{_unit(p, ucum_alternate)}|||||{_status(r)}|||{dtm(r.t_device)}"


_PRIORITY = {Priority.HIGH: "PH", Priority.MEDIUM: "PM", Priority.LOW: "PL", Priority.INFO: "PN"}
_KIND = {AlarmKind.PHYSIOLOGICAL: "SP", AlarmKind.TECHNICAL: "ST", AlarmKind.ADVISORY: "SA"}


def encode_alarm(
    alarm: DeviceAlarm,
    *,
    control_id: str,
    now: datetime,
    location: str | None = None,
    patient_id: str | None = None,
    sending_app: str = "VIGIL_EMU",
    receiving_app: str = "VIGIL",
    source: str | None = None,
    phase: str | None = None,
    processing_id: str = "P",
    version: str = "2.6",
    charset: str = "UNICODE UTF-8",
) -> bytes:
    """One PCD-04 ORU^R40 for a device alarm (phase ``start`` when active, ``end`` when not, unless given)."""
    dev = alarm.device_id
    rcv = receiving_app
    prio = _PRIORITY[alarm.priority]
    kind = _KIND[alarm.alarm_kind]
    t = dtm(alarm.t)
    flags = f"A~{prio}~{kind}"
    segs = [
        _msh(sending_app, dev, now, "R40", control_id, processing_id, version, "", "", charset, PCD04_PROFILE, rcv),
        *_pid_pv1(patient_id, location),
        f"OBR|1|{_E(control_id)}^{_E(sending_app)}|{_E(control_id)}^{_E(sending_app)}|{ALARM_OBR4}|||{t}",
        f"OBX|1||{MDS_CODE}|1.0.0.0|||||||X|||||||{_ei(dev, sending_app)}",
        f"OBX|2|ST|0^{_E(alarm.code)}^MDC|1.0.0.0.1|{_E(alarm.text)}|||{flags}|||R|||{t}",
    ]
    facets = (
        ("68164^MDC_ATTR_ALERT_SOURCE^MDC", source if source is not None else dev),
        ("68165^MDC_ATTR_EVENT_PHASE^MDC", phase or ("start" if alarm.active else "end")),
        ("68166^MDC_ATTR_ALERT_STATE^MDC", "active" if alarm.active else "inactive"),
        ("68484^MDC_ATTR_ALARM_PRIORITY^MDC", prio),
        ("68485^MDC_ATTR_ALERT_TYPE^MDC", kind),
    )
    for i, (code, value) in enumerate(facets, start=2):
        segs.append(f"OBX|{i + 1}|ST|{code}|1.0.0.0.{i}|{_E(value)}|||{flags}|||R")
    return ("\r".join(segs) + "\r").encode("utf-8")
