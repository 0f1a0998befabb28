"""Every published fixture (../shared/fixtures/hl7, read as bytes) decodes to the expected items."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitors.models import AlarmKind, DeviceAlarm, Priority, Quality, Reading, WaveformChunk
from monitors.protocols.pcd01 import Decoded, decode
from tests.protocols.helpers import RECEIVED, fixture_names, load


def dec(name: str, **kw: object) -> Decoded:
    return decode(load(name), received=RECEIVED, **kw)  # type: ignore[arg-type]


def readings(d: Decoded) -> list[Reading]:
    return [i for i in d.items if isinstance(i, Reading)]


def waves(d: Decoded) -> list[WaveformChunk]:
    return [i for i in d.items if isinstance(i, WaveformChunk)]


def summary(d: Decoded) -> list[tuple[str, float | None, str, datetime, Quality]]:
    return [(r.param, r.value, r.unit, r.t_device, r.quality) for r in readings(d)]


def test_all_fixtures_present_or_skip() -> None:
    names = fixture_names()
    if not names:
        pytest.skip("HL7 fixture folder ../shared/fixtures/hl7 is absent")
    assert len(names) == 8


def test_nibp_acme() -> None:
    d = dec("ihe-pcd01-nibp-acme_crlf.hl7")
    t = datetime(2009, 8, 13, 4, 57, 15, tzinfo=UTC)  # OBR-7 20090813095715+0500
    assert summary(d) == [
        ("nibp_sys", 120.0, "mm[Hg]", t, Quality.VALID),
        ("nibp_dia", 80.0, "mm[Hg]", t, Quality.VALID),
        ("nibp_mean", 100.0, "mm[Hg]", t, Quality.VALID),
    ]
    assert {r.device_id for r in readings(d)} == {"0123456789ABCDEF"}  # OBX-18 of the MDS row
    assert d.device_id == "0123456789ABCDEF"
    assert d.header.control_id == "MSGID1234" and d.header.message_type == ("ORU", "R01")
    assert d.header.version == "2.6" and d.header.processing_id == "P"
    assert (d.header.accept_ack_type, d.header.app_ack_type) == ("NE", "AL")
    assert d.header.sending_app == "AcmeInc^ACDE48234567ABCD^EUI-64"
    assert d.patient_id == "789567" and d.location is None
    assert d.unknown == () and d.problems == ()
    assert all(r.t_received == RECEIVED for r in readings(d))


def test_ge_aware_gateway() -> None:
    d = dec("ge-aware-gateway-pcd01_crlf.hl7")
    t = datetime(2008, 12, 11, 14, 45, tzinfo=UTC)  # OBR-7 without offset, MSH-7 without offset: UTC
    assert summary(d) == [("hr", 60.0, "/min", t, Quality.VALID)]
    assert readings(d)[0].device_id == "080019FFFF4F6AC0"  # MSH-3 universal id (no OBX-18)
    assert d.location == "3 WEST ICU^3001^1" and d.patient_id == "AB60001"
    assert d.header.charset == "8859/1"
    assert d.header.control_id == "12d15a9:11df9e61347:-7fee:30456965"
    assert [u.code.split("^")[0] for u in d.unknown] == [
        "148065", "150035", "150033", "150034", "149522", "150047", "150045", "150046"
    ]  # fmt: skip
    assert all(u.reason == "code not in the parameter catalogue" for u in d.unknown)
    assert d.unknown[0].segment.startswith("OBX|2|NM|148065^MDC_ECG_V_P_C_CNT^MDC|1.6.1.2|0|")
    assert any("UTC assumed" in p for p in d.problems)


def test_continua_pulse_oximeter() -> None:
    d = dec("continua-pulse-oximeter-pleth-na_crlf.hl7")
    t = datetime(2009, 7, 15, 7, 7, 7, tzinfo=UTC)
    assert summary(d) == [("spo2", 80.5, "%", t, Quality.VALID)]
    assert readings(d)[0].device_id == "0123456789ABCDEF"
    # The pleth NA has no MDC_ATTR_SAMP_RATE facet and no OBR-8: a problem, unless a rate is configured.
    assert waves(d) == []
    assert any("MDC_PULS_OXIM_PLETH" in p and "no sample rate" in p for p in d.problems)
    d2 = dec("continua-pulse-oximeter-pleth-na_crlf.hl7", default_fs={"pleth": 50.0})
    (w,) = waves(d2)
    assert w.channel == "pleth" and w.unit == "1" and w.gain == 1.0 and w.fs == 50.0
    assert w.samples == (12, 123, 24, 12, 234, 55, 66, 77, 88, 99)
    assert w.t0 == t and w.device_id == "0123456789ABCDEF"


def test_maximal_fields() -> None:
    d = dec("ihe-pcd01-maximal-fields_crlf.hl7")
    t25 = datetime(2009, 8, 13, 4, 57, 25, tzinfo=UTC)
    t15 = datetime(2009, 8, 13, 4, 57, 15, tzinfo=UTC)
    assert summary(d) == [
        ("nibp_sys", 140.0, "mm[Hg]", t25, Quality.VALID),  # OBX-11 C
        ("nibp_mean", 100.0, "mm[Hg]", t15, Quality.VALID),  # F; time from the container row 1.0.1
        # second OBR: codes 1500212/1500232 are not MDC codes; the RefId text maps them
        ("nibp_sys", 120.0, "mm[Hg]", t15, Quality.QUESTIONABLE),  # S
        ("nibp_sys", 80.0, "mm[Hg]", t15, Quality.QUESTIONABLE),  # U
        ("nibp_mean", None, "mm[Hg]", t15, Quality.INVALID),  # X: no reading
    ]
    assert any("deleted (OBX-11 D)" in p and "150022" in p for p in d.problems)
    assert [u.code for u in d.unknown] == ["528391^MDC_DEV_SPEC_PROFILE_BP^MDC"]
    assert {r.device_id for r in readings(d)} == {"0123456789ABCDEF"}  # EI universal id of EUI-64 type
    assert d.location == "B1^^" and d.patient_id == "111222333444"
    assert d.header.receiving_app == "ReceiveApp^1.2.3.5^ISO"


def test_nist_dual_coded_pulse_rate() -> None:
    d = dec("nist-style-pulseox-loinc-and-mdc_cr.hl7")
    t = datetime(2012, 5, 30, 11, 23, 40, tzinfo=UTC)
    assert summary(d) == [("pr", 55.0, "/min", t, Quality.VALID)]  # {beats}/min → /min
    assert readings(d)[0].device_id == "0123456789ABCDEF"
    assert d.location == "ICU^2^23" and d.patient_id == "HO2009001"
    assert d.header.charset == "ASCII"
    assert d.unknown == ()


def test_wcm_waveforms() -> None:
    d = dec("waveform-ecg-spo2-na-wcm-style_cr.hl7")
    assert readings(d) == []
    ws = waves(d)
    assert [w.channel for w in ws] == ["ecg_i", "ecg_ii"]
    t0 = datetime(2015, 6, 17, 12, 0, tzinfo=UTC)
    expected = {"ecg_i": (-0.53714565, -0.54203324, -0.53128055), "ecg_ii": (1.04980469, 1.0546875, 1.04003906)}
    for w in ws:
        assert w.fs == 150.0 and w.t0 == t0 and w.unit == "mV" and w.device_id == "ABC123"
        for s, v in zip(w.samples, expected[w.channel], strict=True):
            assert abs(s * w.gain - v) <= w.gain
    # 150456 is SpO2 (a numeric) but sent as NA with a non-standard RefId: not guessed, counted as unknown
    codes = [u.code for u in d.unknown]
    assert codes[0] == "150456^MDC_PULS_OXIM_SAT_O2_WAVEFORM^MDC"
    assert "does not fit" in d.unknown[0].reason
    assert sorted(codes[1:]) == ["0^MDC_ATTR_DATA_RANGE^MDC", "0^MDC_ATTR_SAMP_RATE^MDC"]


def test_philips_truncated_waveform_is_a_problem() -> None:
    d = dec("philips-picix-style-example-with-waveform-truncated_crlf.hl7")
    t = datetime(2021, 4, 26, 3, 3, 31, 496000, tzinfo=UTC)  # OBR-7 20210425230331.496-0400
    assert summary(d) == [("hr", 60.0, "/min", t, Quality.VALID)]  # MDC_ECG_CARD_BEAT_RATE, code 147842
    assert readings(d)[0].device_id == "7f2586c7-0506-46cd-a612-d8e75b838faa-IntelliVue MX500 - 866064"
    assert waves(d) == []
    assert any("MDC_ECG_ELEC_POTL_I" in p and "non-numeric waveform sample" in p for p in d.problems)
    assert [u.code.split("^")[1] for u in d.unknown] == ["MDC_ECG_STAT_RHY", "MDC_ATTR_FILTER_LABEL_STRING"]
    assert d.header.processing_id == "D" and d.header.charset == "8859/1"
    assert d.location == "My Unit^^Bed1" and d.patient_id == "12345"


def test_ge_mural_r40_alarm() -> None:
    d = dec("ge-mural-oru-r40-alarm-acm_lf.hl7")
    assert d.header.message_type == ("ORU", "R40")
    assert d.items == (
        DeviceAlarm(
            device_id="GE_Mural_DH_NM",
            code="MDCX_EVT_ALERT_ADVISORY",
            priority=Priority.MEDIUM,
            text="HYPERTENSION-Alert Recheck BP",
            t=datetime(2021, 1, 20, 8, 23, 26, 275000, tzinfo=UTC),
            alarm_kind=AlarmKind.ADVISORY,
            active=True,
        ),
    )
    assert d.unknown == () and d.problems == ()
    assert d.location == "ICU^B1^B1" and d.header.charset == "UNICODE UTF-8"
