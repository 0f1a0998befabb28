"""The generic key=value line dialect: values, no-value markers, conditions, waves, fuzzing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitors.models import DeviceAlarm, Quality, Reading, WaveformChunk
from monitors.protocols import keyvalue
from monitors.protocols.serial_common import Decoded, Garbage, Numerics
from tests.serial.ptys import NOW


def readings(out: list[Decoded]) -> list[dict[str, Reading]]:
    return [{r.param: r for r in n.items if isinstance(r, Reading)} for n in out if isinstance(n, Numerics)]


def test_documented_example_decodes() -> None:
    d = keyvalue.KeyValueDecoder("kv")
    out = d.feed(
        b"# a comment\r\n\r\nspo2=97 pr=78 rr=14 etco2=38 cond=motion\n"
        b"hr=72; nibp_sys=121 nibp_dia=79 nibp_mean=93\n"
        b"SPO2=-- BPM=-- cond=probe_off\n"
        b"wave=pleth fs=75 samples=120,131,150,170,168,152\n",
        NOW,
    )
    a, b, c = readings(out)
    assert (a["spo2"].value, a["spo2"].quality, a["rr"].value, a["rr"].unit) == (97, Quality.QUESTIONABLE, 14, "/min")
    assert (b["hr"].value, b["nibp_sys"].value, b["nibp_sys"].unit) == (72, 121, "mm[Hg]")
    assert c["spo2"].value is None and c["pr"].value is None and c["pr"].quality is Quality.INVALID
    codes = [(x.code, x.active) for n in out if isinstance(n, Numerics) for x in n.items if isinstance(x, DeviceAlarm)]
    assert codes == [("SPO2_ARTIFACT", True), ("SPO2_PROBE_OFF", True), ("SPO2_ARTIFACT", False)]
    (w,) = [o for o in out if isinstance(o, WaveformChunk)]
    assert (w.channel, w.fs, w.samples[:2], w.unit) == ("pleth", 75.0, (120, 131), "1")


def test_implausible_and_malformed_values_are_invalid_not_numbers() -> None:
    d = keyvalue.KeyValueDecoder("kv")
    (v,) = readings(d.feed(b"spo2=180 pr=nan hr=1e3 rr=-4 temp=36.6 etco2=0x10\n", NOW))
    assert all(v[k].value is None for k in ("spo2", "pr", "hr", "rr", "etco2"))
    assert v["temp"].value == 36.6


def test_garbage_lines_and_resync_on_next_line() -> None:
    d = keyvalue.KeyValueDecoder("kv")
    out = d.feed(b"\xff\xfe\x00\nhello world\nfoo=1\nspo2=95\n", NOW)
    assert [type(o) for o in out] == [Garbage, Numerics]
    assert d.unknown_keys == {"foo": 1}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=20))
def test_fuzz_random_bytes_never_raise(chunks: list[bytes]) -> None:
    d = keyvalue.KeyValueDecoder("kv")
    for c in chunks:
        for o in d.feed(c, NOW):
            assert isinstance(o, Numerics | Garbage | WaveformChunk)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="spo2prhr=.,;- \n0123456789nacondwvefsl", max_size=60), max_size=10))
def test_fuzz_near_valid_text_never_raises(lines: list[str]) -> None:
    d = keyvalue.KeyValueDecoder("kv")
    for o in d.feed("\n".join(lines).encode(), NOW):
        assert isinstance(o, Numerics | Garbage | WaveformChunk)
