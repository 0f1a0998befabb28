"""MLLP framing, sans-I/O: bytes in, whole message payloads (or frame errors) out.

A frame is ``0x0B`` (VT) + payload + ``0x1C 0x0D`` (FS CR) (PROTOCOLS.md §1, "Transport"). The framer
survives partial frames, several frames per read, junk outside frames (discarded up to the next VT), a VT
inside a frame (the partial frame is abandoned and a new one starts) and an FS without its CR (the frame
ends at FS; a CR arriving later is outside any frame and discarded as junk).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VT = 0x0B
FS = 0x1C
CR = 0x0D
_VT = b"\x0b"
_FS = b"\x1c"
START = _VT
END = b"\x1c\x0d"

#: How many leading bytes of a broken frame a FrameError keeps (enough to peek MSH-10 in most messages).
HEAD_BYTES = 1024


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame that could not be delivered whole.

    ``reason`` is ``oversize`` (the payload grew beyond ``max_frame_bytes``; the rest of it is discarded up to
    the next VT) or ``interrupted`` (a VT arrived before the FS: the partial frame was abandoned).
    ``head`` holds the first bytes of the payload (so MSH-10 may be peeked); ``size`` the bytes seen.
    """

    reason: Literal["oversize", "interrupted"]
    head: bytes
    size: int


Frame = bytes | FrameError
"""What :meth:`MLLPFramer.feed` yields: one whole payload, or a report of a broken frame."""


class MLLPFramer:
    """Incremental MLLP de-framer; one instance per connection."""

    __slots__ = ("_buf", "_in_frame", "junk_bytes", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int) -> None:
        if max_frame_bytes < 1:
            raise ValueError("max_frame_bytes must be positive")
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._in_frame = False
        #: Bytes discarded outside frames so far (diagnostics).
        self.junk_bytes = 0

    @property
    def in_frame(self) -> bool:
        """True while a frame has started but not ended (a disconnect now loses it)."""
        return self._in_frame

    @property
    def buffered(self) -> int:
        """Payload bytes of the unfinished frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data``; return the frames (payloads or errors) it completed, in order."""
        out: list[Frame] = []
        pos = 0
        n = len(data)
        while pos < n:
            if not self._in_frame:
                start = data.find(_VT, pos)
                if start < 0:
                    self.junk_bytes += n - pos
                    return out
                self.junk_bytes += start - pos
                self._in_frame = True
                self._buf.clear()
                pos = start + 1
                continue
            end = data.find(_FS, pos)
            restart = data.find(_VT, pos, end if end >= 0 else n)
            if restart >= 0:
                self._buf += data[pos:restart]
                if not self._check_size(out):
                    out.append(FrameError("interrupted", bytes(self._buf[:HEAD_BYTES]), len(self._buf)))
                self._buf.clear()
                self._in_frame = True
                pos = restart + 1
                continue
            if end < 0:
                self._buf += data[pos:]
                self._check_size(out)
                return out
            self._buf += data[pos:end]
            if self._check_size(out):
                # Oversize was reported; the tail up to FS is discarded with the frame.
                pos = end + 1
                continue
            out.append(bytes(self._buf))
            self._buf.clear()
            self._in_frame = False
            pos = end + 1
            if pos < n and data[pos] == CR:
                pos += 1
        return out

    def _check_size(self, out: list[Frame]) -> bool:
        """Report and drop an oversize frame; True when that happened (the framer is then outside a frame)."""
        if len(self._buf) <= self.max_frame_bytes:
            return False
        out.append(FrameError("oversize", bytes(self._buf[:HEAD_BYTES]), len(self._buf)))
        self._buf.clear()
        self._in_frame = False
        return True


def frame(payload: bytes) -> bytes:
    """Wrap one message in MLLP framing; refuses payloads containing VT or FS."""
    if _VT in payload or _FS in payload:
        raise ValueError("an MLLP payload must not contain VT (0x0B) or FS (0x1C)")
    return START + payload + END
