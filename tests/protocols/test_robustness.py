"""Random and mutated bytes through framer + decode: only DecodeError ever escapes, nothing hangs."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitors.protocols.ack import build_ack
from monitors.protocols.mllp import FrameError, MLLPFramer, frame
from monitors.protocols.pcd01 import DecodeError, decode, peek_control_id
from tests.protocols.helpers import FIXTURES, RECEIVED, fixture_names

SEEDS = [(FIXTURES / n).read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r") for n in fixture_names()] or [
    b"MSH|^~\\&|A^0011223344556677^EUI-64|F|R|RF|20260101120000+0000||ORU^R01|C1|P|2.6\rPID|||1\r"
    b"OBR|1|||x|||20260101120000+0000\rOBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.0.1.1|70|/min|||||R\r"
]
_BYTES = st.sampled_from([b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\x0b", b"\x1c", b"\xff", b"9", b".", b" ",
                          b"NA", b"X", b"-", b"MSH", b"OBX|", b"OBR|1", b"\xe2\x80\xa6"])  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(_BYTES)
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        elif op == "truncate":
            del data[pos:]
        else:
            end = min(len(data), pos + draw(st.integers(1, 60)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


def _decode_all(payloads: list[bytes | FrameError]) -> None:
    for p in payloads:
        if isinstance(p, FrameError):
            peek_control_id(p.head)
            continue
        error: DecodeError | None = None
        try:
            d = decode(p, received=RECEIVED)
        except DecodeError as e:
            error = e
        if error is not None:
            assert 100 <= error.code <= 207
            build_ack(p, error.ack_code, error=error, now=RECEIVED)  # a NAK can always be built
        else:
            assert len(d.items) + len(d.unknown) <= p.count(b"OBX") + 1
            build_ack(d, "AA", now=RECEIVED)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=3), st.integers(1, 50))
def test_mutated_messages_through_framer_and_decode(msgs: list[bytes], step: int) -> None:
    stream = b"".join(b"\x0b" + m + b"\x1c\r" for m in msgs)
    f = MLLPFramer(4096)
    out: list[bytes | FrameError] = []
    for i in range(0, len(stream), step):
        out += f.feed(stream[i : i + step])
    _decode_all(out)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_decode_or_decode_error(data: bytes) -> None:
    _decode_all([data, b"MSH|^~\\&|" + data])
    peek_control_id(data)
    _decode_all(MLLPFramer(128).feed(data))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_after_a_valid_header(tail: str) -> None:
    head = "MSH|^~\\&|A|F|R|RF|20260101||ORU^R01|C|P|2.6\rOBR|1\r"
    _decode_all([(head + tail).encode("utf-8", errors="surrogatepass")])


def test_huge_waveform_and_many_frames_are_fast() -> None:
    obx = b"OBX|1|NA|131330^MDC_ECG_ELEC_POTL_II^MDC|1.0.1.1|" + b"^".join(b"%d" % (i % 500) for i in range(50_000))
    rate = b"\rOBX|2|NM|0^MDC_ATTR_SAMP_RATE^MDC|1.0.1.1.1|500|264608^MDC_DIM_PER_SEC^MDC|||||R"
    msg = SEEDS[0].split(b"OBX", 1)[0].rstrip(b"\r") + b"\r" + obx + b"|mV|||||R" + rate
    f = MLLPFramer(1 << 20)
    frames = f.feed(frame(msg) * 3)
    assert len(frames) == 3
    for p in frames:
        assert isinstance(p, bytes)
        d = decode(p, received=RECEIVED)
        assert any(getattr(i, "kind", "") == "wave" and len(i.samples) == 50_000 for i in d.items)  # type: ignore[union-attr]
