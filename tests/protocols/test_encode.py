"""decode(encode(x)) == x: values, units, quality, times, device id, waveforms and alarms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import hl7
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitors import parameters
from monitors.models import AlarmKind, DeviceAlarm, Priority, Quality, Reading, WaveformChunk
from monitors.parameters import Kind
from monitors.protocols.encode import dtm, encode_alarm, encode_oru, number
from monitors.protocols.pcd01 import decode
from tests.protocols.helpers import RECEIVED

T = datetime(2026, 11, 25, 13, 59, 58, 125000, tzinfo=UTC)


def reading(param: str, value: float | None, dev: str = "dev1", t: datetime = T, **kw: object) -> Reading:
    q = kw.pop("quality", Quality.INVALID if value is None else Quality.VALID)
    p = parameters.get(param)
    return Reading(device_id=dev, param=param, value=value, unit=p.ucum, t_device=t, t_received=RECEIVED, quality=q)


def test_nibp_grouped_under_container() -> None:
    items = [reading("hr", 71), reading("nibp_sys", 121), reading("nibp_dia", 79), reading("nibp_mean", 93)]
    raw = encode_oru(items, device_id="dev1", control_id="C1", now=T, location="PACU^1^3", patient_id="P9")
    m = hl7.parse(raw.decode())
    obx = m.segments("OBX")
    paths = {str(s[3]).split("^")[1]: str(s[4]) for s in obx}
    assert paths["MDC_PRESS_BLD_NONINV"] == "1.0.2"
    assert [paths[f"MDC_PRESS_BLD_NONINV_{x}"] for x in ("SYS", "DIA", "MEAN")] == ["1.0.2.1", "1.0.2.2", "1.0.2.3"]
    assert str(m.segment("MSH")[9]) == "ORU^R01^ORU_R01" and str(m.segment("MSH")[10]) == "C1"
    d = decode(raw, received=RECEIVED)
    assert list(d.items) == items
    assert d.location == "PACU^1^3" and d.patient_id == "P9" and d.device_id == "dev1"
    assert d.problems == () and d.unknown == ()


def test_two_nibp_measurements_two_containers() -> None:
    t2 = T + timedelta(minutes=5)
    items = [reading("nibp_sys", 120), reading("nibp_sys", 130, t=t2), reading("nibp_dia", 80, t=t2)]
    d = decode(encode_oru(items, device_id="dev1", control_id="C", now=T), received=RECEIVED)
    assert sorted(d.items, key=lambda r: (r.t_device, r.param)) == sorted(  # type: ignore[union-attr]
        items, key=lambda r: (r.t_device, r.param)
    )


def test_waveform_round_trip_with_scaled_gain() -> None:
    w = WaveformChunk(device_id="0011223344556677", channel="ecg_ii", t0=T, fs=250.0, samples=(0, 5, -7, 32767),
                      unit="mV", gain=10 / 4096)  # fmt: skip
    p = WaveformChunk(device_id="0011223344556677", channel="pleth", t0=T, fs=62.5, samples=(1, 2, 3), unit="1",
                      gain=0.01)  # fmt: skip
    raw = encode_oru([w, p], device_id="0011223344556677", control_id="W1", now=T)
    assert b"5.mV/2048" in raw
    d = decode(raw, received=RECEIVED)
    assert list(d.items) == [w, p]
    obr = hl7.parse(raw.decode()).segments("OBR")
    assert str(obr[0][7]) == "20261125135958.125+0000" and str(obr[0][8]) == "20261125135958.141+0000"


def test_alarm_round_trip() -> None:
    for active in (True, False):
        a = DeviceAlarm(device_id="mon-3", code="MDC_EVT_LO_SAT_O2", priority=Priority.HIGH, text="SpO2 85 < 90 ^~|&",
                        t=T, alarm_kind=AlarmKind.PHYSIOLOGICAL, active=active)  # fmt: skip
        raw = encode_alarm(a, control_id="A1", now=T, location="PACU^1^3")
        d = decode(raw, received=RECEIVED)
        assert d.header.message_type == ("ORU", "R40")
        assert d.items == (a,) and d.problems == () and d.unknown == ()


def test_encode_refuses_mixed_devices_and_nothing() -> None:
    with pytest.raises(ValueError, match="device"):
        encode_oru([reading("hr", 70, dev="other")], device_id="dev1", control_id="C", now=T)
    with pytest.raises(ValueError, match="nothing"):
        encode_oru([], device_id="dev1", control_id="C", now=T)


def test_dtm_and_number() -> None:
    assert dtm(T) == "20261125135958.125+0000"
    assert dtm(T.replace(microsecond=0)) == "20261125135958+0000"
    assert dtm(T.replace(microsecond=123456)) == "20261125135958.1234+0000"
    assert number(80.5) == "80.5" and number(120.0) == "120" and number(1e-7) == "0.0000001"
    assert float(number(2.6e-176)) == 2.6e-176
    assert float(number(0.1 + 0.2)) == 0.1 + 0.2


# ---------------------------------------------------------------- property-based round trip

NUMERIC = [k for k, p in parameters.CATALOGUE.items() if p.kind is Kind.NUMERIC]
WAVES = [k for k, p in parameters.CATALOGUE.items() if p.kind is Kind.WAVEFORM]
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)).map(
    lambda t: t.replace(microsecond=t.microsecond // 100 * 100)
)  # DTM carries 100 µs
device_ids = st.one_of(
    st.text(alphabet="0123456789ABCDEF", min_size=16, max_size=16),
    st.text(alphabet="abcxyz-_. |^~&\\é0123", min_size=1, max_size=20).map(str.strip).filter(bool),
)


@st.composite
def readings(draw: st.DrawFn, dev: str) -> Reading:
    key = draw(st.sampled_from(NUMERIC))
    p = parameters.get(key)
    quality = draw(st.sampled_from(list(Quality)))
    value: float | None = None
    if quality is not Quality.INVALID:
        value = draw(st.floats(min_value=p.plausible[0], max_value=p.plausible[1], allow_nan=False))
    return Reading(device_id=dev, param=key, value=value, unit=p.ucum, t_device=draw(times), t_received=RECEIVED,
                   quality=quality)  # fmt: skip


@st.composite
def chunks(draw: st.DrawFn, dev: str) -> WaveformChunk:
    key = draw(st.sampled_from(WAVES))
    return WaveformChunk(
        device_id=dev,
        channel=key,
        t0=draw(times),
        fs=draw(st.sampled_from([62.5, 100.0, 125.0, 250.0, 500.0, 1000.0])),
        samples=tuple(draw(st.lists(st.integers(-32768, 32767), min_size=1, max_size=50))),
        unit=parameters.get(key).ucum,
        gain=draw(st.sampled_from([1.0, 0.001, 10 / 4096, 0.5, 2.5])),
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_round_trip_property(data: st.DataObject) -> None:
    dev = data.draw(device_ids)
    rs = data.draw(st.lists(readings(dev), max_size=6))
    ws = data.draw(st.lists(chunks(dev), max_size=3))
    if not rs and not ws:
        return
    # one NIBP value per parameter and time (a second one at the same time would be a different measurement)
    seen: set[tuple[str, datetime]] = set()
    unique: list[Reading] = []
    for r in rs:
        if r.param.startswith("nibp"):
            if (r.param, r.t_device) in seen:
                continue
            seen.add((r.param, r.t_device))
        unique.append(r)
    rs = unique
    loc = data.draw(st.one_of(st.none(), st.just("PACU^Bay 1^3")))
    raw = encode_oru([*rs, *ws], device_id=dev, control_id="RT", now=T, location=loc)
    d = decode(raw, received=RECEIVED)
    got_r = [i for i in d.items if isinstance(i, Reading)]
    got_w = [i for i in d.items if isinstance(i, WaveformChunk)]
    key = lambda r: (r.t_device, r.param, r.value is None, r.value or 0)  # noqa: E731
    assert sorted(got_r, key=key) == sorted(rs, key=key)
    assert got_w == ws
    assert d.device_id == dev and d.location == loc and d.unknown == ()


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(list(Priority)),
    st.sampled_from(list(AlarmKind)),
    st.booleans(),
    st.text(min_size=1, max_size=40).map(lambda s: s.replace("\r", " ").replace("\n", " ").strip()).filter(bool),
    times,
)
def test_alarm_round_trip_property(prio: Priority, kind: AlarmKind, active: bool, text: str, t: datetime) -> None:
    a = DeviceAlarm(device_id="dev-9", code="MDC_EVT_X", priority=prio, text=text, t=t, alarm_kind=kind, active=active)
    assert decode(encode_alarm(a, control_id="A", now=T), received=RECEIVED).items == (a,)
