"""ACKs parse with python-hl7 and say what PROTOCOLS.md §1 asks (swap, MSA-2 echo, ERR-3/ERR-4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import hl7
import pytest

from monitors.protocols.ack import build_ack, format_dtm
from monitors.protocols.mllp import FrameError, MLLPFramer, frame
from monitors.protocols.pcd01 import DecodeError, decode, peek_header
from tests.protocols.helpers import RECEIVED, fixture_names, load

NOW = datetime(2026, 11, 25, 14, 0, 1, 250000, tzinfo=UTC)
ORU = (
    b"MSH|^~\\&|Mon^0011223344556677^EUI-64|Ward|Vigil|Hosp|20260101120000+0000||ORU^R01^ORU_R01|C-1|P|2.6\r"
    b"PID|||p\rOBR|1|||x|||20260101120000+0000\r"
    b"OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.0.1.1|70|/min|||||R\r"
)


def parsed(ack: bytes, encoding: str = "latin-1") -> Any:
    assert ack.endswith(b"\r") and b"\n" not in ack
    return hl7.parse(ack.decode(encoding))


def test_aa_swaps_sender_and_receiver() -> None:
    d = decode(ORU, received=RECEIVED)
    m = parsed(build_ack(d, "AA", now=NOW, control_id="ACK-1"))
    msh = m.segment("MSH")
    assert str(msh[3]) == "Vigil" and str(msh[4]) == "Hosp"
    assert str(msh[5]) == "Mon^0011223344556677^EUI-64" and str(msh[6]) == "Ward"
    assert str(msh[7]) == "20261125140001.250+0000"
    assert str(msh[9]) == "ACK^R01^ACK" and str(msh[10]) == "ACK-1"
    assert str(msh[11]) == "P" and str(msh[12]) == "2.6"
    msa = m.segment("MSA")
    assert str(msa[1]) == "AA" and str(msa[2]) == "C-1"
    with pytest.raises(KeyError):
        m.segment("ERR")


def test_generated_control_ids_differ() -> None:
    a = parsed(build_ack(ORU, "AA", now=NOW)).segment("MSH")[10]
    b = parsed(build_ack(ORU, "AA", now=NOW)).segment("MSH")[10]
    assert str(a) and str(a) != str(b)


def test_error_ack_carries_err() -> None:
    bad = ORU.replace(b"ORU^R01^ORU_R01", b"ADT^A01^ADT_A01")
    with pytest.raises(DecodeError) as e:
        decode(bad, received=RECEIVED)
    m = parsed(build_ack(bad, e.value.ack_code, error=e.value, now=NOW))
    assert str(m.segment("MSA")[1]) == "AR" and str(m.segment("MSA")[2]) == "C-1"
    assert str(m.segment("MSH")[9]) == "ACK^A01^ACK"
    err = m.segment("ERR")
    assert str(err[3]) == "200^Unsupported message type^HL70357"
    assert str(err[4]) == "E"
    assert "ADT" in str(err[8])


def test_ae_without_error_uses_207_and_text() -> None:
    m = parsed(build_ack(ORU, "AE", text="no usable observation | sorry", now=NOW))
    err = m.segment("ERR")
    assert str(err[3]).startswith("207^") and m.unescape(str(err[8])) == "no usable observation | sorry"
    assert m.unescape(str(m.segment("MSA")[3])) == "no usable observation | sorry"


def test_ack_with_only_a_peeked_control_id() -> None:
    err = DecodeError(100, "garbled", "ID-9")
    m = parsed(build_ack(None, "AE", error=err, now=NOW))
    assert str(m.segment("MSA")[2]) == "ID-9" and str(m.segment("MSH")[9]) == "ACK"
    assert str(m.segment("MSH")[3]) == "VIGIL"


def test_ack_for_an_oversize_frame_head() -> None:
    big = ORU + b"OBX|2|NA|x|1|" + b"1^" * 5000 + b"\r"
    (fe,) = MLLPFramer(4096).feed(frame(big))
    assert isinstance(fe, FrameError)
    ack = build_ack(fe.head, "AR", error=DecodeError(104, "frame too large", None), now=NOW)
    m = parsed(ack)
    assert str(m.segment("MSA")[2]) == "C-1" and str(m.segment("ERR")[3]).startswith("104^")


def test_ack_uses_received_delimiters_and_charset() -> None:
    odd = b"MSH#*@\\$#App\xe9#Fac#Me#My#20260101##ORU*R01#CX#T#2.4######8859/1\rOBR#1\r"
    h = peek_header(odd)
    assert h is not None and h.charset == "8859/1"
    ack = build_ack(odd, "AE", text="é", now=NOW)
    text = ack.decode("latin-1")
    assert text.startswith("MSH#*@\\$#Me#My#App\xe9#Fac#")
    m = hl7.parse(text)
    assert str(m.segment("MSH")[9]) == "ACK*R01*ACK" and str(m.segment("MSH")[11]) == "T"
    assert str(m.segment("MSA")[2]) == "CX"
    assert str(m.segment("MSH")[18]) == "8859/1" and "é" in text
    assert str(m.segment("ERR")[1]).startswith("***207$")  # v2.4: ERR-1 (ELD) form ...
    assert str(m.segment("ERR")[3]).startswith("207*") and str(m.segment("ERR")[4]) == "E"  # ... and v2.5+ fields


def test_commit_acks() -> None:
    for code in ("CA", "CE", "CR"):
        m = parsed(build_ack(ORU, code, now=NOW))
        assert str(m.segment("MSA")[1]) == code


@pytest.mark.parametrize("name", fixture_names() or ["<absent>"])
def test_ack_for_every_fixture_parses(name: str) -> None:
    raw = load(name)
    d = decode(raw, received=RECEIVED)
    ack = build_ack(d, "AA", now=NOW)
    m = parsed(ack, "utf-8" if d.header.charset.endswith("UTF-8") else "latin-1")
    assert str(m.segment("MSA")[2]) == d.header.control_id
    assert str(m.segment("MSH")[9]) == f"ACK^{d.header.message_type[1]}^ACK"


def test_format_dtm() -> None:
    assert format_dtm(NOW) == "20261125140001.250+0000"
    assert format_dtm(NOW, precision=0) == "20261125140001+0000"
    with pytest.raises(ValueError, match="aware"):
        format_dtm(datetime(2026, 1, 1))
