"""Decoding rules one at a time, on small hand-built messages (PROTOCOLS.md §1)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitors.models import Quality, Reading, WaveformChunk
from monitors.protocols.pcd01 import Decoded, DecodeError, decode, parse_dtm, peek_control_id, peek_header
from monitors.protocols.units import resolve
from tests.protocols.helpers import RECEIVED


def msg(*obx: str, msh7: str = "20260101120000+0100", version: str = "2.6", typ: str = "ORU^R01^ORU_R01",
        proc: str = "P", msh3: str = "Mon^0123456789abcdef^EUI-64", obr7: str = "", charset: str = "",
        pv1: str = "PV1||I|PACU^1^3") -> bytes:  # fmt: skip
    segs = [
        f"MSH|^~\\&|{msh3}|F|R|RF|{msh7}||{typ}|CID1|{proc}|{version}||||||{charset}",
        "PID|||pat1^^^H^PI",
        pv1,
        f"OBR|1|||x^y^MDC|||{obr7}",
        *obx,
    ]
    return "\r".join(segs).encode("latin-1")


def one(d: Decoded) -> Reading:
    (r,) = [i for i in d.items if isinstance(i, Reading)]
    return r


def nm(code: str, value: str, unit: str, status: str = "R", t: str = "", extra: str = "") -> str:
    return f"OBX|1|NM|{code}|1.0.1.1|{value}|{unit}|||||{status}|||{t}{extra}"


HR = "147842^MDC_ECG_HEART_RATE^MDC"
TEMP = "150364^MDC_TEMP_BODY^MDC"
ETCO2 = "151708^MDC_CONC_AWAY_CO2_ET^MDC"


@pytest.mark.parametrize(
    ("code", "unit", "value", "param", "expected"),
    [
        (HR, "264864^MDC_DIM_BEAT_PER_MIN^MDC", "72", "hr", 72.0),
        (HR, "/min^/min^UCUM", "72", "hr", 72.0),
        (HR, "{beats}/min^beats per minute^UCUM", "72", "hr", 72.0),
        (HR, "bpm", "72", "hr", 72.0),
        ("8867-4^Heart rate^LN", "/min^^UCUM", "72", "hr", 72.0),
        ("^MDC_ECG_CARD_BEAT_RATE^MDC", "/min", "72", "hr", 72.0),
        ("150456^MDC_PULS_OXIM_SAT_O2^MDC", "%^%^UCUM", "97", "spo2", 97.0),
        ("150456^MDC_PULS_OXIM_SAT_O2^MDC", "262688^MDC_DIM_PERCENT^MDC", "97", "spo2", 97.0),
        (TEMP, "Cel^Cel^UCUM", "36.6", "temp", 36.6),
        (TEMP, "268192^MDC_DIM_DEGC^MDC", "36.6", "temp", 36.6),
        (TEMP, "[degF]^[degF]^UCUM", "98.6", "temp", 37.0),
        (ETCO2, "mmHg", "38", "etco2", 38.0),
        (ETCO2, "kPa^kPa^UCUM", "5", "etco2", 37.5),
        ("151562^MDC_RESP_RATE^MDC", "264928^MDC_DIM_RESP_PER_MIN^MDC", "14", "rr", 14.0),
        ("9279-1^Resp rate^LN", "{breaths}/min", "14", "rr", 14.0),
    ],
)
def test_codes_and_units(code: str, unit: str, value: str, param: str, expected: float) -> None:
    r = one(decode(msg(nm(code, value, unit)), received=RECEIVED))
    assert r.param == param
    assert r.value == pytest.approx(expected, abs=0.01)


def test_unknown_and_incompatible_units_are_problems() -> None:
    d = decode(msg(nm(HR, "72", "furlongs"), nm(TEMP, "36", "%")), received=RECEIVED)
    assert d.items == ()
    assert any("unknown unit 'furlongs'" in p for p in d.problems)
    assert any("not convertible to 'Cel'" in p for p in d.problems)


def test_missing_unit_assumes_catalogue_unit_with_a_problem() -> None:
    d = decode(msg(nm(HR, "72", "")), received=RECEIVED)
    assert one(d).value == 72.0 and any("no unit" in p for p in d.problems)


@pytest.mark.parametrize(
    ("status", "value", "quality", "expected"),
    [
        ("R", "70", Quality.VALID, 70.0),
        ("F", "70", Quality.VALID, 70.0),
        ("C", "70", Quality.VALID, 70.0),
        ("P", "70", Quality.QUESTIONABLE, 70.0),
        ("S", "70", Quality.QUESTIONABLE, 70.0),
        ("X", "70", Quality.INVALID, None),
        ("X", "", Quality.INVALID, None),
    ],
)
def test_status(status: str, value: str, quality: Quality, expected: float | None) -> None:
    r = one(decode(msg(nm(HR, value, "/min", status)), received=RECEIVED))
    assert (r.value, r.quality) == (expected, quality)


def test_deleted_unparseable_implausible_and_nan_are_problems() -> None:
    d = decode(
        msg(nm(HR, "70", "/min", "D"), nm(HR, "7O", "/min"), nm(HR, "999", "/min"), nm(HR, "nan", "/min")),
        received=RECEIVED,
    )
    assert d.items == ()
    text = " | ".join(d.problems)
    assert "deleted" in text and "unparseable value '7O'" in text and "implausible value 999" in text
    assert "unparseable value 'nan'" in text


def test_time_fallbacks_and_offsets() -> None:
    # OBX-14 with its own offset wins
    r = one(decode(msg(nm(HR, "70", "/min", t="20260101083000-0500")), received=RECEIVED))
    assert r.t_device == datetime(2026, 1, 1, 13, 30, tzinfo=UTC)
    # OBX-14 without offset takes MSH-7's (+0100)
    r = one(decode(msg(nm(HR, "70", "/min", t="20260101083000")), received=RECEIVED))
    assert r.t_device == datetime(2026, 1, 1, 7, 30, tzinfo=UTC)
    # no OBX-14: OBR-7
    r = one(decode(msg(nm(HR, "70", "/min"), obr7="20260101110000.5"), received=RECEIVED))
    assert r.t_device == datetime(2026, 1, 1, 10, 0, 0, 500000, tzinfo=UTC)
    # nothing but MSH-7
    r = one(decode(msg(nm(HR, "70", "/min")), received=RECEIVED))
    assert r.t_device == datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
    # no offset anywhere: UTC, noted once
    d = decode(msg(nm(HR, "70", "/min"), nm(HR, "71", "/min"), msh7="20260101120000"), received=RECEIVED)
    assert [r.t_device for r in d.items if isinstance(r, Reading)] == [datetime(2026, 1, 1, 12, tzinfo=UTC)] * 2
    assert sum("UTC assumed" in p for p in d.problems) == 1


def test_parse_dtm() -> None:
    assert parse_dtm("2026") is not None
    assert parse_dtm("20260101123456.1234+0130") is not None
    assert parse_dtm("20261301") is None  # month 13
    assert parse_dtm("2026-01-01") is None
    assert parse_dtm("20260101+2500") is None


def test_device_id_rules() -> None:
    mds = "OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X|||||||mds-7"
    own = nm(HR, "70", "/min", extra="||||x^^0011223344556677^EUI-64")
    other_mds = "OBX|3|NM|147842^MDC_ECG_HEART_RATE^MDC|2.0.1.1|71|/min|||||R"
    d = decode(msg(mds, own, nm(HR, "72", "/min"), other_mds), received=RECEIVED)
    ids = [r.device_id for r in d.items if isinstance(r, Reading)]
    assert ids == ["0011223344556677", "mds-7", "0123456789ABCDEF"]  # own EI / MDS row / MSH-3 (upper-cased)
    assert d.device_id == "mds-7"
    d = decode(msg(nm(HR, "70", "/min"), msh3="JustAName"), received=RECEIVED)
    assert one(d).device_id == "JustAName"
    with pytest.raises(DecodeError) as e:
        decode(msg(nm(HR, "70", "/min"), msh3=""), received=RECEIVED)
    assert e.value.code == 101


def test_location_and_patient() -> None:
    d = decode(msg(nm(HR, "70", "/min"), pv1="PV1||I|Unit \\T\\ A^Room^Bed"), received=RECEIVED)
    assert d.location == "Unit & A^Room^Bed" and d.patient_id == "pat1"
    d = decode(msg(nm(HR, "70", "/min"), pv1="PV1||I|"), received=RECEIVED)
    assert d.location is None


def test_waveform_rate_from_obr_block_and_scaled_unit() -> None:
    obx = "OBX|1|NA|131330^MDC_ECG_ELEC_POTL_II^MDC|1.0.1.1|1^-2^3^4|10.mV/4096^10.mV/4096^UCUM|||||R"
    raw = msg(obx).replace(b"OBR|1|||x^y^MDC|||", b"OBR|1|||x^y^MDC|||20260101120000+0000|20260101120000.016+0000")
    d = decode(raw, received=RECEIVED)
    (w,) = [i for i in d.items if isinstance(i, WaveformChunk)]
    assert w.samples == (1, -2, 3, 4) and w.gain == 10 / 4096 and w.fs == pytest.approx(250.0)
    assert w.t0 == datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_waveform_in_microvolts_and_out_of_int16() -> None:
    obx = "OBX|1|NA|131330^MDC_ECG_ELEC_POTL_II^MDC|1.0.1.1|100^-40000^50|uV|||||R"
    rate = "OBX|2|NM|0^MDC_ATTR_SAMP_RATE^MDC|1.0.1.1.1|500|264608^MDC_DIM_PER_SEC^MDC|||||R"
    d = decode(msg(obx, rate), received=RECEIVED)
    (w,) = [i for i in d.items if isinstance(i, WaveformChunk)]
    assert w.fs == 500.0
    assert [round(s * w.gain, 3) for s in w.samples] == [0.1, -40.0, 0.05]


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"typ": "ADT^A01^ADT_A01"}, 200),
        ({"typ": "ORU^R30"}, 201),
        ({"proc": "X"}, 202),
        ({"version": "2.1"}, 203),
        ({"version": "2.9"}, 203),
        ({"version": "2.51"}, 203),
        ({"version": ""}, 101),
        ({"typ": ""}, 101),
    ],
)
def test_header_errors(kw: dict[str, str], code: int) -> None:
    with pytest.raises(DecodeError) as e:
        decode(msg(nm(HR, "70", "/min"), **kw), received=RECEIVED)
    assert e.value.code == code and e.value.control_id == "CID1"
    assert e.value.ack_code == ("AR" if code >= 200 else "AE")


@pytest.mark.parametrize("version", ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.2"])
def test_supported_versions(version: str) -> None:
    assert one(decode(msg(nm(HR, "70", "/min"), version=version), received=RECEIVED)).value == 70


def test_structure_errors() -> None:
    with pytest.raises(DecodeError) as e:
        decode(b"MSH|^~\\&|A|B|C|D|2026||ORU^R01|C9|P|2.6\rOBX|1|NM|x|1|1", received=RECEIVED)
    assert (e.value.code, e.value.control_id) == (100, "C9")
    with pytest.raises(DecodeError) as e:
        decode(b"MSH|^~\\&|A|B|C|D|2026||ORU^R01|C9|P|2.6\rPID|1", received=RECEIVED)
    assert e.value.code == 100
    with pytest.raises(DecodeError) as e:
        decode(b"\x00\x01 definitely not hl7", received=RECEIVED)
    assert (e.value.code, e.value.control_id) == (100, None)


def test_charsets() -> None:
    obx = "OBX|1|ST|184327^MDC_ECG_STAT_RHY^MDC|1.0.1.1|Sinus été||||||R"

    def payload(charset: str, encoding: str) -> bytes:
        return msg(obx, charset=charset).decode("latin-1").encode(encoding)

    cases = [
        ("8859/1", "latin-1", None),
        ("UNICODE UTF-8", "utf-8", None),
        ("", "utf-8", "decoded as UTF-8"),
        ("", "latin-1", "decoded as Latin-1"),
        ("ASCII", "latin-1", "decoded as Latin-1"),
    ]
    for charset, encoding, problem in cases:
        d = decode(payload(charset, encoding), received=RECEIVED)
        assert "Sinus été" in d.unknown[0].segment, (charset, encoding)
        assert d.header.charset == charset
        assert (problem is None) == (not d.problems), d.problems
        if problem:
            assert problem in d.problems[0]
    d = decode(payload("UNICODE UTF-8", "latin-1"), received=RECEIVED)  # lies about its charset
    assert any("replaced" in p for p in d.problems)
    d = decode(payload("ISO IR87", "utf-8"), received=RECEIVED)
    assert any("not supported" in p for p in d.problems)


def test_peek() -> None:
    assert peek_control_id(b"garbage\rMSH|^~\\&|a|b|c|d|t||ORU^R01|C77|P|2.6") == "C77"
    assert peek_control_id(b"MSH|^~\\&|a|b|c|d|t||ORU^R01|C\\F\\7") == "C|7"
    assert peek_control_id(b"MSH|^~\\&|a") is None
    assert peek_control_id(b"") is None
    assert peek_control_id(b"MSH") is None
    h = peek_header(b"\xff\xfeMSH#^~\\&#app#fac#r#rf#t##ORU^R40#ID5#P#2.5")
    assert h is not None and h.field_sep == "#" and h.control_id == "ID5" and h.message_type == ("ORU", "R40")


def test_units_resolve_directly() -> None:
    assert resolve("266016", "MDC_DIM_MMHG", "MDC") == ("mm[Hg]", 1.0, 0.0)
    assert resolve("0", "MDC_DIM_MMHG", "MDC") == ("mm[Hg]", 1.0, 0.0)
    assert resolve("10.mV/4096") == ("mV", 10 / 4096, 0.0)
    assert resolve("5.uV") == ("mV", 0.005, 0.0)
    assert resolve("264608", "MDC_DIM_PER_SEC", "MDC") == ("/s", 1.0, 0.0)
    assert resolve("nonsense") is None


def test_offsets_on_obx_only_do_not_report_utc_assumed() -> None:
    d = decode(msg(nm(HR, "70", "/min", t="20260101083000+0000"), msh7="20260101120000"), received=RECEIVED)
    assert one(d).t_device == datetime(2026, 1, 1, 8, 30, tzinfo=UTC) and d.problems == ()


def test_extreme_times_and_ranges_do_not_crash() -> None:
    d = decode(msg(nm(HR, "70", "/min", t="99991231235959-1200")), received=RECEIVED)
    assert one(d).t_device == datetime(2026, 1, 1, 11, tzinfo=UTC)  # falls back to MSH-7
    assert any("unparseable time" in p for p in d.problems)
    obx = "OBX|1|NA|131330^MDC_ECG_ELEC_POTL_II^MDC|1.0.1.1|1e-320^0.0^-1e-320|mV|||||R"
    rate = "OBX|2|NM|0^MDC_ATTR_SAMP_RATE^MDC|1.0.1.1.1|500||||||R"
    d = decode(msg(obx, rate), received=RECEIVED)
    assert len(d.items) + len(d.problems) >= 1


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=-50, max_value=50, allow_nan=False), min_size=1, max_size=40),
    st.sampled_from([50.0, 125.0, 250.0, 500.0]),
)
def test_decimal_waveform_samples_are_quantised_within_one_step(values: list[float], fs: float) -> None:
    na = "^".join(repr(v) for v in values)
    obx = f"OBX|1|NA|131330^MDC_ECG_ELEC_POTL_II^MDC|1.0.1.1|{na}|266418^MDC_DIM_MILLI_VOLT^MDC|||||R"
    rate = f"OBX|2|NM|0^MDC_ATTR_SAMP_RATE^MDC|1.0.1.1.1|{fs}|264608^MDC_DIM_PER_SEC^MDC|||||R"
    d = decode(msg(obx, rate), received=RECEIVED)
    (w,) = d.items
    assert isinstance(w, WaveformChunk) and w.fs == fs and len(w.samples) == len(values)
    for s, v in zip(w.samples, values, strict=True):
        assert abs(s * w.gain - v) <= w.gain
