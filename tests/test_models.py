"""Contracts: reading models and the parameter catalogue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from monitors import parameters
from monitors.base import Batch
from monitors.models import DeviceAlarm, DeviceState, DeviceStatus, Priority, Quality, Reading, WaveformChunk

NOW = datetime(2026, 11, 25, 14, 10, 38, tzinfo=UTC)


def reading(**kw: object) -> Reading:
    values: dict[str, object] = {
        "device_id": "d1",
        "param": "hr",
        "value": 72.0,
        "unit": "/min",
        "t_device": NOW,
        "t_received": NOW,
    }
    values.update(kw)
    return Reading(**values)


def test_reading_is_frozen_and_round_trips() -> None:
    r = reading()
    with pytest.raises(ValidationError):
        r.value = 80.0  # type: ignore[misc]
    assert Reading.model_validate_json(r.model_dump_json()) == r


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"param": "nope"}, "unknown parameter"),
        ({"unit": "bpm"}, "must be in '/min'"),
        ({"value": 400.0}, "plausible"),
        ({"value": float("nan")}, "plausible"),
        ({"value": None}, "invalid"),
        ({"t_device": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"param": "ecg_ii", "unit": "mV"}, "waveform, not a numeric"),
        ({"device_id": ""}, "at least 1"),
    ],
)
def test_reading_rejects_bad_values(changes: dict[str, object], message: str) -> None:
    with pytest.raises((ValidationError, KeyError), match=message):
        reading(**changes)


def test_missing_value_is_invalid_never_zero() -> None:
    r = reading(value=None, quality=Quality.INVALID)
    assert r.value is None and r.quality is Quality.INVALID


def test_waveform_chunk_checks_channel_unit_and_int16() -> None:
    w = WaveformChunk(device_id="d1", channel="ecg_ii", t0=NOW, fs=250, samples=(0, 1, -1), unit="mV", gain=0.005)
    assert w.duration == timedelta(seconds=3 / 250)
    with pytest.raises(ValidationError, match="int16"):
        WaveformChunk(device_id="d1", channel="ecg_ii", t0=NOW, fs=250, samples=(40000,), unit="mV")
    with pytest.raises(ValidationError, match="numeric, not a waveform"):
        WaveformChunk(device_id="d1", channel="hr", t0=NOW, fs=1, samples=(1,), unit="/min")
    with pytest.raises(ValidationError):
        WaveformChunk(device_id="d1", channel="pleth", t0=NOW, fs=0, samples=(1,), unit="1")


def test_status_and_alarm_models() -> None:
    s = DeviceStatus(device_id="d1", state=DeviceState.STALE, since=NOW, detail="no data for 3 s")
    a = DeviceAlarm(device_id="d1", code="SPO2_PROBE_OFF", priority=Priority.MEDIUM, text="SpO2 PROBE OFF", t=NOW)
    assert s.kind == "status" and a.kind == "device_alarm" and a.active
    batch = Batch((s, a))
    assert batch.committed is None and len(batch.items) == 2


REQUIRED = {
    # key: (MDC code, RefId, LOINC, UCUM) — facts from ../shared/protocols/PROTOCOLS.md §1
    "hr": (147842, "MDC_ECG_HEART_RATE", "8867-4", "/min"),
    "spo2": (150456, "MDC_PULS_OXIM_SAT_O2", "59408-5", "%"),
    "pr": (149530, "MDC_PULS_OXIM_PULS_RATE", "8889-8", "/min"),
    "nibp_sys": (150021, "MDC_PRESS_BLD_NONINV_SYS", "8480-6", "mm[Hg]"),
    "nibp_dia": (150022, "MDC_PRESS_BLD_NONINV_DIA", "8462-4", "mm[Hg]"),
    "nibp_mean": (150023, "MDC_PRESS_BLD_NONINV_MEAN", "8478-0", "mm[Hg]"),
    "rr": (151562, "MDC_RESP_RATE", "9279-1", "/min"),
    "etco2": (151708, "MDC_CONC_AWAY_CO2_ET", "19889-5", "mm[Hg]"),
    "temp": (150364, "MDC_TEMP_BODY", "8310-5", "Cel"),
    "ecg_ii": (131330, "MDC_ECG_ELEC_POTL_II", None, "mV"),
    "pleth": (150452, "MDC_PULS_OXIM_PLETH", None, "1"),
}


@pytest.mark.parametrize("key", sorted(REQUIRED))
def test_catalogue_rows(key: str) -> None:
    code, refid, loinc, ucum = REQUIRED[key]
    p = parameters.get(key)
    assert (p.mdc_code, p.mdc_refid, p.loinc, p.ucum) == (code, refid, loinc, ucum)
    assert parameters.by_mdc_code(code) is p
    assert parameters.by_refid(refid) is p
    if loinc:
        assert parameters.by_loinc(loinc) is p
    lo, hi = p.plausible
    assert lo < hi


def test_catalogue_alternative_codes_seen_in_the_wild() -> None:
    # Philips sends MDC_ECG_CARD_BEAT_RATE; capnographs send either EtCO2 RefId (PROTOCOLS.md).
    assert parameters.by_refid("MDC_ECG_CARD_BEAT_RATE") is parameters.get("hr")
    assert parameters.by_refid("mdc_away_co2_et") is parameters.get("etco2")
    assert parameters.by_mdc_code(151728) is parameters.get("etco2")
    assert parameters.by_mdc_code(999999) is None
    assert parameters.get("co2").kind is parameters.Kind.WAVEFORM
    assert parameters.get("nibp_sys").cadence is parameters.Cadence.EPISODIC
