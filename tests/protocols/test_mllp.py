"""MLLP framing with bytes: partial frames, several per read, junk, VT restarts, FS without CR, oversize."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitors.protocols.mllp import FrameError, MLLPFramer, frame
from monitors.protocols.pcd01 import peek_control_id

MSG = b"MSH|^~\\&|A|B|C|D|20260101||ORU^R01|CID42|P|2.6\rPID|||1\r"


def test_one_frame() -> None:
    assert MLLPFramer(1024).feed(frame(MSG)) == [MSG]


def test_frame_wraps_and_refuses_control_bytes() -> None:
    assert frame(b"x") == b"\x0bx\x1c\r"
    with pytest.raises(ValueError, match="must not contain"):
        frame(b"a\x1cb")
    with pytest.raises(ValueError, match="must not contain"):
        frame(b"a\x0bb")


def test_partial_frames_byte_by_byte() -> None:
    f = MLLPFramer(1024)
    out: list[bytes | FrameError] = []
    for b in frame(MSG) + frame(b"second"):
        out += f.feed(bytes([b]))
    assert out == [MSG, b"second"]
    assert not f.in_frame and f.buffered == 0


def test_several_frames_in_one_read_and_junk_between() -> None:
    f = MLLPFramer(1024)
    data = b"noise" + frame(b"one") + b"\r\n garbage " + frame(b"two") + frame(b"three") + b"tail"
    assert f.feed(data) == [b"one", b"two", b"three"]
    assert f.junk_bytes == len(b"noise") + len(b"\r\n garbage ") + len(b"tail")


def test_vt_inside_frame_restarts() -> None:
    f = MLLPFramer(1024)
    out = f.feed(b"\x0bhalf a mess" + b"\x0bwhole\x1c\r")
    assert out == [FrameError("interrupted", b"half a mess", 11), b"whole"]


def test_fs_without_cr_ends_frame() -> None:
    f = MLLPFramer(1024)
    assert f.feed(b"\x0bone\x1c") == [b"one"]
    assert f.feed(b"\r\x0btwo\x1c\x0bthree\x1c") == [b"two", b"three"]


def test_split_between_fs_and_cr() -> None:
    f = MLLPFramer(1024)
    assert f.feed(b"\x0bone\x1c") == [b"one"]
    assert f.feed(b"\r") == []
    assert f.junk_bytes == 1


def test_oversize_reported_once_then_next_frame_ok() -> None:
    f = MLLPFramer(64)
    big = MSG + b"OBX|" + b"9" * 200 + b"\r"
    out: list[bytes | FrameError] = []
    data = frame(big) + frame(b"small")
    for i in range(0, len(data), 7):
        out += f.feed(data[i : i + 7])
    assert len(out) == 2
    err = out[0]
    assert isinstance(err, FrameError) and err.reason == "oversize"
    assert err.size > 64 and big.startswith(err.head)
    assert peek_control_id(err.head) == "CID42"
    assert out[1] == b"small"


def test_exact_limit_is_allowed() -> None:
    assert MLLPFramer(5).feed(frame(b"12345")) == [b"12345"]
    out = MLLPFramer(5).feed(frame(b"123456"))
    assert len(out) == 1 and isinstance(out[0], FrameError)


def test_disconnect_mid_frame_is_visible() -> None:
    f = MLLPFramer(1024)
    assert f.feed(b"\x0bMSH|partial") == []
    assert f.in_frame and f.buffered == len(b"MSH|partial")


def test_invalid_limit() -> None:
    with pytest.raises(ValueError, match="positive"):
        MLLPFramer(0)


payloads = st.binary(max_size=80).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b""))


@settings(max_examples=200, deadline=None)
@given(st.lists(payloads, max_size=6), st.data())
def test_any_chunking_yields_the_same_frames(msgs: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    f = MLLPFramer(1024)
    out: list[bytes | FrameError] = []
    prev = 0
    for c in [*cuts, len(stream)]:
        out += f.feed(stream[prev:c])
        prev = c
    assert out == msgs


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8), st.integers(1, 100))
def test_random_bytes_never_break_the_framer(chunks: list[bytes], limit: int) -> None:
    f = MLLPFramer(limit)
    for c in chunks:
        for item in f.feed(c):
            if isinstance(item, bytes):
                assert b"\x0b" not in item and b"\x1c" not in item and len(item) <= limit
            else:
                assert item.reason in ("oversize", "interrupted")
                assert len(item.head) <= item.size
