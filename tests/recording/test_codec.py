"""The waveform codec (app/recording/codec.py): exact round trips of any int16 sequence through every codec
id, old recordings (ids 1 and 2) still decoding, malformed blobs refused, and the RICE codec smaller than
the zstd-only codec it replaced on simulated ECG, pleth and capnogram."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from app.recording import codec
from simulators.physiology import CHANNELS, RestingPatient

INT16 = st.integers(-32768, 32767)
EXTREMES = st.sampled_from([-32768, -32767, -1, 0, 1, 32766, 32767])


@st.composite
def smooth(draw: st.DrawFn) -> list[int]:
    """A sine plus noise, clipped to int16 (clipping makes flat tops at the extremes)."""
    n = draw(st.integers(0, 600))
    amp = draw(st.floats(0, 40000))
    period = draw(st.floats(2, 500))
    noise = draw(st.floats(0, 50))
    offset = draw(st.integers(-32768, 32767))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    return [
        max(-32768, min(32767, round(offset + amp * math.sin(2 * math.pi * i / period) + rnd.gauss(0, noise))))
        for i in range(n)
    ]


@st.composite
def steps(draw: st.DrawFn) -> list[int]:
    """Runs of constant values (flat lines, square waves, jumps between the extremes)."""
    runs = draw(st.lists(st.tuples(st.one_of(INT16, EXTREMES), st.integers(1, 80)), max_size=12))
    return [v for v, k in runs for _ in range(k)]


SEQUENCES = st.one_of(
    st.lists(INT16, max_size=600),
    st.lists(EXTREMES, max_size=300),
    st.lists(st.integers(-40, 40), max_size=300),
    smooth(),
    steps(),
)


# --- the codecs before RICE, built here with zstandard directly (what app/recording/codec.py wrote) ----------


def old_blob(xs: list[int], order: int) -> bytes:
    """A DELTA1 (order 1) or DELTA2 (order 2) blob as the old encoder wrote it: differences modulo 2**16 with
    the first sample against 0, zigzag, low-byte plane then high-byte plane, zstd level 3 with the content
    size and no checksum."""
    d = [v & 0xFFFF for v in xs]
    for _ in range(order):
        d = [(v - (d[i - 1] if i else 0)) & 0xFFFF for i, v in enumerate(d)]
    z = [((v - 65536 if v >= 32768 else v) * 2) & 0xFFFF ^ (0xFFFF if v >= 32768 else 0) for v in d]
    planes = bytes(v & 0xFF for v in z) + bytes(v >> 8 for v in z)
    cctx = zstandard.ZstdCompressor(level=3, write_content_size=True, write_checksum=False, write_dict_id=False)
    return cctx.compress(planes)


def old_size(xs: list[int]) -> int:
    """Bytes the zstd-only codec took: the smaller of DELTA1 and DELTA2."""
    return min(len(old_blob(xs, 1)), len(old_blob(xs, 2)))


def test_the_old_blob_builder_agrees_with_the_zigzag_definition() -> None:
    # zigzag 0, -1, 1, -2, 2, 32767, -32768 -> 0, 1, 2, 3, 4, 65534, 65535 (delta1 of x is x[0], x[1]-x[0] ...)
    xs = [0, -1, 0, -2, 0, 32767, 0]  # delta1: 0, -1, 1, -2, 2, 32767, -32767
    planes = zstandard.ZstdDecompressor().decompress(old_blob(xs, 1))
    z = [lo | hi << 8 for lo, hi in zip(planes[:7], planes[7:], strict=True)]
    assert z == [0, 1, 2, 3, 4, 65534, 65533]


@pytest.mark.parametrize(
    "xs",
    [
        [],
        [0],
        [-32768],
        [32767, -32768, 32767, -32768],
        list(range(-300, 300, 7)),
        [round(800 * math.sin(i / 9)) for i in range(250)],
    ],
)
@pytest.mark.parametrize("codec_id", [codec.DELTA1, codec.DELTA2])
def test_old_recordings_still_decode(xs: list[int], codec_id: int) -> None:
    assert codec.decode(codec_id, old_blob(xs, codec_id), len(xs)) == xs


@given(st.lists(INT16, max_size=300), st.sampled_from([codec.DELTA1, codec.DELTA2]))
@settings(max_examples=100, deadline=None)
def test_old_recordings_of_any_int16_sequence_still_decode(xs: list[int], codec_id: int) -> None:
    assert codec.decode(codec_id, old_blob(xs, codec_id), len(xs)) == xs


# --- round trips --------------------------------------------------------------------------------------------


@given(SEQUENCES)
@settings(max_examples=400, deadline=None)
def test_any_int16_sequence_round_trips(xs: list[int]) -> None:
    c, data = codec.encode(xs)
    assert c in (codec.RICE, codec.DELTA1, codec.DELTA2)
    assert codec.decode(c, data, len(xs)) == xs
    # never larger than the zstd-only codec, unless RICE was good enough that zstd was not tried
    assert len(data) <= old_size(xs) or (c == codec.RICE and 8 * len(data) <= codec._TRY_ZSTD_ABOVE_BITS * len(xs))
    arr = codec.decode_array(c, data, len(xs))
    assert arr.dtype == np.int16 and arr.tolist() == xs


@given(SEQUENCES)
@settings(max_examples=200, deadline=None)
def test_rice_round_trips_even_where_zstd_wins(xs: list[int]) -> None:
    x = np.asarray(xs, dtype=np.int16)
    if x.size == 0:
        data = codec.encode(xs)[1]
    else:
        z = codec._residuals(x)
        data = codec._rice_pack(x, z, *codec._rice_plan(z, x.size - 1))
    assert codec.decode(codec.RICE, data, len(xs)) == xs


@pytest.mark.parametrize(
    "xs",
    [
        [],
        [0],
        [1],
        [-32768],
        [32767],
        [-32768, 32767],
        [32767, -32768, 32767],
        [-32768] * 300,
        [32767] * 7,
        [0] * 250,
        [-32768, 32767] * 125,
        list(range(-32768, 32768, 131)),
        [0] * 100 + [30000] + [0] * 100,  # one outlier in a flat line: an escape
        [round(1000 * math.sin(i / 20)) for i in range(125)] + [-32768] * 3 + [5] * 10,
        [i * i % 65536 - 32768 for i in range(250)],  # wraps all over the range
    ],
)
def test_edge_cases_round_trip(xs: list[int]) -> None:
    c, data = codec.encode(xs)
    assert codec.decode(c, data, len(xs)) == xs


def test_encode_takes_tuples_and_arrays() -> None:
    xs = [3, 1, 4, 1, 5, 9, 2, 6]
    assert codec.encode(tuple(xs)) == codec.encode(xs) == codec.encode(np.array(xs, dtype=np.int16))


def test_every_codec_id_decodes_what_it_encodes() -> None:
    rnd = random.Random(7)
    pattern = [rnd.randint(-2000, 2000) for _ in range(50)]
    repeated = pattern * 10  # exact repetition: zstd's long matches beat any predictor
    d = np.cumsum(np.array([*pattern[:49], 1000] * 10, dtype=np.int16), dtype=np.int16)  # periodic 2nd difference
    drifting = np.cumsum(d, dtype=np.int16).tolist()
    sine = [round(1000 * math.sin(i / 20)) for i in range(250)]
    chosen = {}
    for xs in (repeated, drifting, sine):
        c, data = codec.encode(xs)
        chosen[c] = xs
        assert codec.decode(c, data, len(xs)) == xs
    assert set(chosen) == {codec.RICE, codec.DELTA1, codec.DELTA2}
    assert codec.encode(repeated) == (codec.DELTA1, old_blob(repeated, 1))  # the old bytes, exactly
    assert codec.encode(drifting) == (codec.DELTA2, old_blob(drifting, 2))
    assert codec.encode(sine)[0] == codec.RICE


# --- malformed blobs ------------------------------------------------------------------------------------------


BLOBS = [
    (codec.RICE, [round(1000 * math.sin(i / 20)) + (i % 7) for i in range(250)]),
    (codec.RICE, [0] * 30 + [round(400 * math.sin(i / 5)) for i in range(32)]),  # zero partitions
    (codec.RICE, [0] * 100 + [30000] + [0] * 100),  # an escape
    (codec.RICE, [-32768, 32767, 12]),
    (codec.RICE, [5]),
    (codec.DELTA1, [1, 2, 3, 100, -5]),
    (codec.DELTA2, list(range(0, 2500, 10))),
]


def blob(c: int, xs: list[int]) -> bytes:
    if c == codec.RICE:
        x = np.asarray(xs, dtype=np.int16)
        z = codec._residuals(x)
        return codec._rice_pack(x, z, *codec._rice_plan(z, x.size - 1))
    return old_blob(xs, c)


@pytest.mark.parametrize(("c", "xs"), BLOBS)
def test_truncated_blobs_and_a_wrong_n_raise(c: int, xs: list[int]) -> None:
    data = blob(c, xs)
    assert codec.decode(c, data, len(xs)) == xs
    for cut in range(len(data)):
        with pytest.raises(ValueError, match="waveform segment"):
            codec.decode(c, data[:cut], len(xs))
    if c == codec.RICE:  # (zstd ignores bytes after its frame, as it always did)
        for extra in (b"\x00", b"\x80", b"\xff\xff"):
            with pytest.raises(ValueError, match="length or padding"):
                codec.decode(c, data + extra, len(xs))
    for wrong in (len(xs) + 1, len(xs) - 1):
        if wrong >= 0:
            with pytest.raises(ValueError, match=f"expected {wrong}"):
                codec.decode(c, data, wrong)


def test_corrupt_rice_headers_raise() -> None:
    xs = [round(1000 * math.sin(i / 20)) for i in range(250)]
    c, data = codec.encode(xs)
    assert c == codec.RICE
    for first in (data[0] | 0x40, data[0] | 0x80, (data[0] & ~7) | 5, (data[0] & ~7) | 7, (data[0] & 7) | 5 << 3):
        with pytest.raises(ValueError, match="corrupt waveform segment header"):
            codec.decode(c, bytes([first]) + data[1:], 250)
    with pytest.raises(ValueError, match="partitions"):  # 16 partitions of 2 residuals
        codec.decode(c, bytes([4 << 3, 3]) + bytes(10), 3)
    with pytest.raises(ValueError, match="wider than 16 bits"):  # the first sample's length field says 31
        codec.decode(c, bytes([0, 250, 0xF8]) + data[3:], 250)
    with pytest.raises(ValueError, match="expected 0"):
        codec.decode(c, data, 0)
    with pytest.raises(ValueError, match="trailing bytes"):
        codec.decode(c, bytes([0, 0, 0]), 0)  # an empty segment with a payload
    with pytest.raises(ValueError, match="negative"):
        codec.decode(c, data, -1)
    with pytest.raises(ValueError, match="unknown waveform codec"):
        codec.decode(99, data, 250)


def rice_blob(n: int, header: int, bits: str) -> bytes:
    """A RICE blob written by hand: the header byte, n mod 256, then ``bits`` zero-padded to a byte."""
    bits += "0" * (-len(bits) % 8)
    return bytes([header, n & 0xFF]) + int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else bytes([header, n])


def test_hand_written_rice_blobs() -> None:
    # n = 3, order 0, one partition: first sample 0 (L = 0), then k, then two residuals
    assert codec.decode(codec.RICE, rice_blob(3, 0, "00000" + "1111"), 3) == [0, 0, 0]  # an all-zero partition
    # k = 1: quotients 2 and 0 (unary 001, 1), remainders 1 and 0: zigzag 5 and 0, i.e. -3 and 0
    assert codec.decode(codec.RICE, rice_blob(3, 0, "00000" + "0001" + "001" + "1" + "1" + "0"), 3) == [0, -3, 0]
    escape = "0" * 16 + "1"
    assert codec.decode(codec.RICE, rice_blob(3, 0, "00000" + "0000" + escape + "1" + "0000000000000001"), 3) == [
        0,
        -1,
        0,
    ]
    with pytest.raises(ValueError, match="beyond the escape"):  # 17 zeros: no coder writes that
        codec.decode(codec.RICE, rice_blob(3, 0, "00000" + "0000" + "0" * 17 + "1" + "1"), 3)
    with pytest.raises(ValueError, match="out of range"):  # an escaped quotient of 2**16 - 1 with k = 1
        codec.decode(codec.RICE, rice_blob(3, 0, "00000" + "0001" + escape + "1" + "1" + "1" + "1" * 16), 3)
    with pytest.raises(ValueError, match="out of range"):  # q = 15 with k = 14: 15 << 14 > 65535
        codec.decode(codec.RICE, rice_blob(3, 0, "00000" + "1110" + "0" * 15 + "1" + "1" + "0" * 28), 3)
    with pytest.raises(ValueError, match="truncated"):  # the unary stream ends after one residual of two
        codec.decode(codec.RICE, rice_blob(3, 0, "00000" + "0000" + "1"), 3)


def test_nonzero_padding_raises() -> None:
    xs = [0, 0, 0]  # order 0, one all-zero partition: 5 + 0 + 4 = 9 bits, 7 bits of padding
    c, data = codec.encode(xs)
    assert c == codec.RICE and codec.decode(c, data, 3) == xs
    for bit in range(7):
        bad = data[:-1] + bytes([data[-1] | 1 << bit])
        with pytest.raises(ValueError, match="padding"):
            codec.decode(c, bad, 3)


@given(st.sampled_from(range(len(BLOBS))), st.data())
@settings(max_examples=400, deadline=None)
def test_any_corruption_raises_or_decodes_to_n_int16_samples(which: int, data: st.DataObject) -> None:
    c, xs = BLOBS[which]
    raw = bytearray(blob(c, xs))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    try:
        out = codec.decode(c, bytes(raw), len(xs))
    except ValueError:
        return
    assert len(out) == len(xs) and all(-32768 <= v <= 32767 for v in out)


# --- size -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_rice_is_smaller_than_the_zstd_only_codec_on_simulated_signals(channel: str) -> None:
    fs, _ = CHANNELS[channel]
    n = round(fs)
    new = old = 0
    for seed in (1, 2):
        patient = RestingPatient(seed)
        for k in range(20):
            xs = patient.samples(channel, k * n, n)
            rnd = random.Random(seed * 100 + k)
            noisy = [max(-32768, min(32767, v + round(rnd.gauss(0, 3)))) for v in xs]  # a real front end's noise
            for seg in (xs, noisy):
                c, data = codec.encode(seg)
                assert codec.decode(c, data, n) == seg
                new += len(data)
                old += old_size(seg)
    assert new < old
