"""Masimo ASCII 1 decoder: values, dashes, EXC bits, resync, and fuzzing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitors.models import DeviceAlarm, Quality, Reading
from monitors.protocols import masimo
from monitors.protocols.serial_common import Decoded, Garbage, Numerics
from tests.serial.ptys import NOW

# Real Rad-8 capture (github.com/yahnatan/pulseox README) and the MD PnP Radical-5 example string.
RAD8 = (
    b"02/22/16 22:47:45 SN=0000056661 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- "
    b"PIDELTA=+-- ALARM=0000 EXC=000800\r\n"
)
RAD5 = b"09/15/10 15:10:29 SPO2=097% BPM=064 PI=11.82% ALARM=20 EXC=800\r\n"


def values(out: list[Decoded]) -> list[dict[str, Reading]]:
    return [{r.param: r for r in n.items if isinstance(r, Reading)} for n in out if isinstance(n, Numerics)]


def test_real_lines_decode_to_spo2_and_pr_in_catalogue_units() -> None:
    d = masimo.MasimoAscii1Decoder("rad")
    (a,), (b,) = [values(d.feed(line, NOW)) for line in (RAD8, RAD5)]
    assert (a["spo2"].value, a["spo2"].unit, a["pr"].value, a["pr"].unit) == (98.0, "%", 97.0, "/min")
    assert a["spo2"].quality is Quality.VALID  # EXC 0x800 "Masimo SET" is informational
    assert (b["spo2"].value, b["pr"].value) == (97.0, 64.0)


def test_dashes_are_no_value_never_zero() -> None:
    d = masimo.MasimoAscii1Decoder("rad")
    line = RAD8.replace(b"SPO2=098%", b"SPO2=---%").replace(b"BPM=097", b"BPM=---")
    (v,) = values(d.feed(line, NOW))
    assert v["spo2"].value is None and v["spo2"].quality is Quality.INVALID
    assert v["pr"].value is None and v["pr"].quality is Quality.INVALID


def test_exc_bits_become_technical_alarms_on_transitions() -> None:
    d = masimo.MasimoAscii1Decoder("rad")
    off = masimo.encode_line(NOW, spo2=None, pr=None, conditions={"probe_off"})
    low = masimo.encode_line(NOW, spo2=96, pr=70, conditions={"low_perfusion"})
    out = d.feed(off + off + low, NOW)
    alarms = [
        (a.code, a.active, a.priority.value)
        for n in out
        if isinstance(n, Numerics)
        for a in n.items
        if isinstance(a, DeviceAlarm)
    ]
    assert alarms == [
        ("SPO2_PROBE_OFF", True, "medium"),  # CLINICAL.md T1: probe off MEDIUM
        ("SPO2_LOW_PERFUSION", True, "low"),
        ("SPO2_PROBE_OFF", False, "medium"),
    ]
    last = values(out)[-1]
    assert last["spo2"].value == 96 and last["spo2"].quality is Quality.QUESTIONABLE
    # No sensor / sensor off make the values invalid even if digits were sent.
    (v,) = values(d.feed(RAD8.replace(b"EXC=000800", b"EXC=000001"), NOW))
    assert v["spo2"].value is None


def test_resync_after_garbage_within_one_line() -> None:
    d = masimo.MasimoAscii1Decoder("rad")
    half = RAD8[:50]  # a half line: the rest was lost
    out = d.feed(b"\x00\xff\x13garbage" + half + RAD8 + b"#junk#\r\n" + RAD5, NOW)
    assert [type(o) for o in out] == [Garbage, Numerics, Garbage, Numerics]
    assert [v["spo2"].value for v in values(out)] == [98.0, 97.0]
    assert isinstance(out[0], Garbage) and out[0].head.startswith(b"\x00\xff\x13garbage")


def test_any_single_dropped_byte_never_changes_a_value() -> None:
    """No checksum in ASCII 1: the strict field shapes must catch every lost byte."""
    line = masimo.encode_line(NOW, spo2=100, pr=78, pi=5.28)
    for i in range(len(line)):
        d = masimo.MasimoAscii1Decoder("rad")
        for v in values(d.feed(line[:i] + line[i + 1 :] + line, NOW)):
            assert v["spo2"].value == 100 and v["pr"].value == 78


def test_split_anywhere_and_crlf_variants() -> None:
    data = RAD8 + RAD8.replace(b"\r\n", b"\n\r") + RAD8.replace(b"\r\n", b"\n")
    for step in (1, 7, 64):
        d = masimo.MasimoAscii1Decoder("rad")
        out = [o for i in range(0, len(data), step) for o in d.feed(data[i : i + step], NOW)]
        assert len(values(out)) == 3 and not any(isinstance(o, Garbage) for o in out)


def test_endless_line_is_bounded() -> None:
    d = masimo.MasimoAscii1Decoder("rad")
    out = d.feed(b"A" * 5000, NOW)
    assert sum(o.size for o in out if isinstance(o, Garbage)) == 5000
    assert values(d.feed(RAD8, NOW))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=20))
def test_fuzz_random_bytes_never_raise(chunks: list[bytes]) -> None:
    d = masimo.MasimoAscii1Decoder("rad")
    for c in chunks:
        for o in d.feed(c, NOW):
            assert isinstance(o, Numerics | Garbage)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=30)), max_size=6))
def test_fuzz_garbage_spliced_into_good_lines_never_invents_a_value(cuts: list[tuple[int, bytes]]) -> None:
    good = masimo.encode_line(NOW, spo2=93, pr=61, pi=1.5) * 3
    data = bytearray(good)
    for pos, junk in cuts:
        at = pos % (len(data) + 1)
        data[at:at] = junk
    d = masimo.MasimoAscii1Decoder("rad")
    for v in values(d.feed(bytes(data), NOW)):
        assert v["spo2"].value in (93, None) and v["pr"].value in (61, None)
