"""Nonin data format 2 decoder: frames, packets, status bits, resync, and fuzzing."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from monitors.models import DeviceAlarm, Quality, Reading, WaveformChunk
from monitors.protocols import nonin
from monitors.protocols.serial_common import Decoded, Garbage, Numerics
from tests.serial.ptys import NOW


def stream(
    seconds: float,
    hr: float | None = 78,
    spo2: float | None = 97,
    conditions: set[str] | None = None,
    enc: nonin.NoninDf2Encoder | None = None,
) -> bytes:
    enc = enc or nonin.NoninDf2Encoder()
    enc.set_values(hr=hr, spo2=spo2, conditions=conditions or set())
    n = round(seconds * nonin.FS)
    return enc.frames([(40 + 3 * k) % 256 for k in range(n)])


def values(out: list[Decoded]) -> list[dict[str, Reading]]:
    return [{r.param: r for r in n.items if isinstance(r, Reading)} for n in out if isinstance(n, Numerics)]


def alarms(out: list[Decoded]) -> list[tuple[str, bool]]:
    return [(a.code, a.active) for n in out if isinstance(n, Numerics) for a in n.items if isinstance(a, DeviceAlarm)]


def test_frame_layout_and_checksum() -> None:
    f = nonin.encode_frame(nonin.SYNC, 200, 0x01)
    assert f == bytes([0x01, 0x81, 200, 0x01, (0x01 + 0x81 + 200 + 0x01) & 0xFF])
    assert nonin.frame_ok(f) and not nonin.frame_ok(f[:4] + bytes([f[4] ^ 1]))


def test_hr_spo2_pleth_decoded_one_report_per_second() -> None:
    enc = nonin.NoninDf2Encoder()
    d = nonin.NoninDf2Decoder("ox")
    out = d.feed(stream(3.0, hr=300, spo2=97, enc=enc), NOW)
    out += d.feed(stream(1 / 75, hr=300, spo2=97, enc=enc), NOW)  # the marker that completes the last packet
    v = values(out)
    assert len(v) == 3
    assert (v[0]["pr"].value, v[0]["pr"].unit, v[0]["spo2"].value, v[0]["spo2"].unit) == (300, "/min", 97, "%")
    chunks = [o for o in out if isinstance(o, WaveformChunk)]
    assert {(c.channel, c.fs, c.unit, len(c.samples)) for c in chunks} == {("pleth", 75.0, "1", 15)}
    assert sum(len(c.samples) for c in chunks) == 225
    assert chunks[0].samples[:3] == (40, 43, 46)
    # contiguous timing: each chunk starts where the previous ended
    for a, b in itertools.pairwise(chunks):
        assert abs(((a.t0 + a.duration) - b.t0).total_seconds()) < 1e-6


def test_invalid_markers_become_no_value() -> None:
    d = nonin.NoninDf2Decoder("ox")
    (v, *_) = values(d.feed(stream(1.1, hr=None, spo2=None), NOW))
    assert v["pr"].value is None and v["spo2"].value is None and v["spo2"].quality is Quality.INVALID


def test_status_bits_map_to_technical_conditions() -> None:
    assert nonin.status_conditions(0x80 | nonin.SNSD) == {"no_sensor"}
    assert nonin.status_conditions(0x80 | nonin.SNSA) == {"probe_off"}
    assert nonin.status_conditions(0x80 | nonin.OOT) == {"pulse_search"}
    assert nonin.status_conditions(0x80 | nonin.ARTF | nonin.GPRF) == {"artifact"}
    assert nonin.status_conditions(0x80 | nonin.RPRF) == {"low_perfusion"}
    assert nonin.status_conditions(0x80 | nonin.RPRF | nonin.GPRF) == set()  # yellow: medium quality
    enc = nonin.NoninDf2Encoder()
    d = nonin.NoninDf2Decoder("ox")
    out = d.feed(stream(1.0, enc=enc) + stream(2.0, hr=None, spo2=None, conditions={"no_sensor"}, enc=enc), NOW)
    out += d.feed(stream(3.0, enc=enc), NOW)
    assert alarms(out) == [("SPO2_NO_SENSOR", True), ("SPO2_NO_SENSOR", False)]
    off = [v for v in values(out) if v["spo2"].value is None]
    assert off and all(v["pr"].quality is Quality.INVALID for v in off)


def test_resync_within_one_frame_after_garbage_and_half_frame() -> None:
    enc = nonin.NoninDf2Encoder()
    good = stream(1.0, enc=enc)
    d = nonin.NoninDf2Decoder("ox")
    d.feed(good, NOW)
    frames_before = d.frames
    more = stream(2.0, enc=enc)
    out = d.feed(b"\x01\x81\x07" + b"\xaa\x55\x01" + more, NOW)  # a half frame, then noise, then good frames
    garbage = [o for o in out if isinstance(o, Garbage)]
    assert sum(g.size for g in garbage) == 6
    assert d.frames - frames_before == len(more) // 5  # every good frame after the noise is used
    assert values(out)


def test_lost_or_extra_frame_discards_the_packet() -> None:
    enc = nonin.NoninDf2Encoder()
    data = bytearray(stream(2.0, hr=80, spo2=95, enc=enc))
    del data[5 * 30 : 5 * 31]  # one whole frame lost in packet 2
    extra = nonin.encode_frame(0x80, 1, 33)  # one valid-looking frame too many in packet 4
    data[5 * 76 : 5 * 76] = extra
    d = nonin.NoninDf2Decoder("ox")
    out = d.feed(bytes(data) + stream(2.0, hr=80, spo2=95, enc=enc), NOW)
    assert d.packets_dropped >= 2
    assert all(v["spo2"].value == 95 and v["pr"].value == 80 for v in values(out))


def test_any_single_dropped_byte_never_changes_a_value() -> None:
    base = stream(2.0, hr=123, spo2=88)
    for i in range(0, len(base), 3):
        d = nonin.NoninDf2Decoder("ox")
        for v in values(d.feed(base[:i] + base[i + 1 :], NOW)):
            assert v["spo2"].value == 88 and v["pr"].value == 123


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=120), max_size=20))
def test_fuzz_random_bytes_never_raise(chunks: list[bytes]) -> None:
    d = nonin.NoninDf2Decoder("ox")
    for c in chunks:
        for o in d.feed(c, NOW):
            assert isinstance(o, Numerics | Garbage | WaveformChunk)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.binary(min_size=1, max_size=12)), max_size=8), st.integers(1, 64))
def test_fuzz_garbage_spliced_into_frames_never_invents_a_value(cuts: list[tuple[int, bytes]], step: int) -> None:
    data = bytearray(stream(3.0, hr=64, spo2=99))
    for pos, junk in cuts:
        at = pos % (len(data) + 1)
        data[at:at] = junk
    d = nonin.NoninDf2Decoder("ox")
    for i in range(0, len(data), step):
        for v in values(d.feed(bytes(data[i : i + step]), NOW)):
            assert v["spo2"].value in (99, None) and v["pr"].value in (64, None)
