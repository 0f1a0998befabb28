"""HL7 v2 acknowledgements (original mode, plus the enhanced-mode commit codes), as bytes.

Per PROTOCOLS.md §1 "Acknowledgement": MSH with sender and receiver swapped, MSH-9 ``ACK^<trigger>^ACK``,
its own control id; MSA-1 the code, MSA-2 the received MSH-10; for AE/AR/CE/CR an ERR segment with
ERR-3 the HL7 table 0357 error code, ERR-4 the severity (E) and ERR-8 the message (plus ERR-1 for
v2.3/2.4 receivers). The received message's delimiters, processing id, version and character set (MSH-18)
are echoed when known, so the ACK is written in the sender's own dialect; segments end with CR. MSA-3
carries ``text`` for versions before 2.7 (withdrawn later). The result is not MLLP-framed (``mllp.frame``).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Literal

from monitors.protocols.hl7 import Encoding
from monitors.protocols.pcd01 import (
    ERROR_NAMES,
    SUPPORTED_VERSIONS,
    Decoded,
    DecodeError,
    MessageHeader,
    codec_for,
    peek_header,
)

AckCode = Literal["AA", "AE", "AR", "CA", "CE", "CR"]

_SEQ = itertools.count(1)
_ERRORISH = ("AE", "AR", "CE", "CR")


def format_dtm(t: datetime, *, precision: int = 3) -> str:
    """An HL7 DTM in UTC with offset: ``YYYYMMDDHHMMSS[.fff]+0000`` (``precision`` 0, 3 or 4 digits)."""
    if t.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    u = t.astimezone(UTC)
    base = u.strftime("%Y%m%d%H%M%S")
    if precision:
        base += "." + f"{u.microsecond:06d}"[:precision]
    return base + "+0000"


def _encoding(h: MessageHeader | None) -> Encoding:
    if h is None:
        return Encoding()
    c = h.encoding_chars
    if len(c) in (4, 5) and len(set(c + h.field_sep)) == len(c) + 1:
        return Encoding(h.field_sep, c[0], c[1], c[2], c[3], c[4] if len(c) == 5 else None)
    return Encoding()


def build_ack(
    header_or_payload: MessageHeader | Decoded | bytes | None,
    code: AckCode,
    *,
    error: DecodeError | None = None,
    text: str = "",
    now: datetime,
    control_id: str | None = None,
    local_app: str = "VIGIL",
    local_facility: str = "",
) -> bytes:
    """Build the ACK for a received message (a decoded one, its header, or raw bytes to peek).

    When nothing but the error's control id is known, a minimal ACK with default delimiters is built.
    ``control_id`` is the ACK's own MSH-10 (generated when omitted); ``local_app``/``local_facility``
    fill MSH-3/4 when the received MSH-5/6 are empty.
    """
    if isinstance(header_or_payload, Decoded):
        h: MessageHeader | None = header_or_payload.header
    elif isinstance(header_or_payload, MessageHeader):
        h = header_or_payload
    elif isinstance(header_or_payload, bytes | bytearray):
        h = peek_header(bytes(header_or_payload))
    else:
        h = None
    if h is None and error is not None and error.header is not None:
        h = error.header
    enc = _encoding(h)
    fs = enc.field
    esc = enc.escape_text

    received_id = h.control_id if h is not None else None
    if received_id is None and error is not None:
        received_id = error.control_id
    trigger = h.message_type[1] if h is not None else ""
    version = h.version if h is not None and h.version.startswith(SUPPORTED_VERSIONS) else "2.6"
    processing = h.processing_id if h is not None and h.processing_id in ("P", "D", "T") else "P"
    charset = h.charset if h is not None else ""
    codec = codec_for(charset) if charset else "ascii"
    if codec is None:
        charset, codec = "", "ascii"
    own_id = control_id or f"ACK{now.astimezone(UTC):%Y%m%d%H%M%S}{next(_SEQ) % 1_000_000:06d}"

    msh = [
        "MSH",
        enc.msh2,
        (h.receiving_app if h is not None and h.receiving_app.strip() else esc(local_app)),
        (h.receiving_facility if h is not None and h.receiving_facility.strip() else esc(local_facility)),
        h.sending_app if h is not None else "",
        h.sending_facility if h is not None else "",
        format_dtm(now),
        "",
        enc.component.join(("ACK", esc(trigger), "ACK")) if trigger else "ACK",
        esc(own_id),
        processing,
        version,
    ]
    if charset:
        msh += ["", "", "", "", "", charset]
    msa = ["MSA", code, esc(received_id or "")]
    legacy = version.startswith(("2.3", "2.4"))
    if text and not version.startswith(("2.7", "2.8")):
        msa.append(esc(text))
    segments = [fs.join(msh), fs.join(msa)]
    if code in _ERRORISH or error is not None:
        err_code = error.code if error is not None else 207
        name = ERROR_NAMES.get(err_code, "Error")
        cwe = enc.component.join((str(err_code), esc(name), "HL70357"))
        message = error.message if error is not None else text
        eld = ""
        if legacy:
            # v2.3/2.4 receivers read ERR-1 (ELD: segment^sequence^field^code as CE in subcomponents); the
            # v2.5+ fields after it are sent too (receivers ignore fields they do not know).
            eld = enc.component.join(("", "", "", enc.subcomponent.join((str(err_code), esc(name), "HL70357"))))
        segments.append(fs.join(["ERR", eld, "", cwe, "E", "", "", "", esc(message)]))
    return ("\r".join(segments) + "\r").encode(codec, errors="replace")
