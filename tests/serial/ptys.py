"""Pseudo-terminal pairs for serial tests: the adapter opens the slave path, the test writes the master."""

from __future__ import annotations

import os
import tty
from datetime import UTC, datetime
from pathlib import Path

NOW = datetime(2026, 11, 25, 14, 0, 0, tzinfo=UTC)


class Pty:
    """A raw pty pair; ``path`` is the slave device (or ``link`` once ``link_to`` made one)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line editing: bytes pass unchanged
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.closed = False

    def write(self, data: bytes) -> None:
        """Write all of ``data`` to the master (the device side)."""
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def link_to(self, link: Path) -> Path:
        """Point the symlink ``link`` at this pty (atomically) and return it."""
        tmp = link.with_name(link.name + ".tmp")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(self.path)
        tmp.replace(link)
        return link

    def close(self) -> None:
        """Close both ends: the slave path disappears and readers get an error or end of file."""
        if not self.closed:
            os.close(self.master)
            os.close(self.slave)
            self.closed = True
