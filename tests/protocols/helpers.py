"""Shared helpers for the protocol codec tests: fixture loading and python-hl7 tree canonicalisation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "hl7"
RECEIVED = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)

Tree = tuple[tuple[tuple[str, ...], ...], ...]


def fixture_names() -> list[str]:
    """The fixture file names (empty when the shared folder is absent)."""
    if not FIXTURES.is_dir():
        return []
    return sorted(p.name for p in FIXTURES.glob("*.hl7"))


def load(name: str) -> bytes:
    """One fixture, as bytes (separators vary: read as bytes, never text)."""
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"HL7 fixture folder {FIXTURES} is absent (shared fixtures not mounted)")
    return path.read_bytes()


def normalised(raw: bytes, encoding: str = "latin-1") -> str:
    """Fixture text with CR as the only segment terminator (what both parsers are fed)."""
    return raw.decode(encoding).replace("\r\n", "\r").replace("\n", "\r")


def py_field_tree(field: Any) -> Tree:
    """A python-hl7 field as repetitions → components → subcomponents of raw strings.

    python-hl7 only creates a child container where a delimiter occurs (a plain value stays a str);
    this restores the regular shape our tokenizer returns from ``Field.tree()``.
    """
    if isinstance(field, str):
        return (((field,),),)
    children = list(field)
    if all(isinstance(c, str) for c in children):
        assert len(children) == 1, children
        return (((children[0],),),)
    reps: list[tuple[tuple[str, ...], ...]] = []
    for rep in children:
        if isinstance(rep, str):
            reps.append(((rep,),))
            continue
        comps: list[tuple[str, ...]] = []
        for comp in rep:
            comps.append((comp,) if isinstance(comp, str) else tuple(str(s) for s in comp))
        reps.append(tuple(comps))
    return tuple(reps)


def py_message_trees(msg: Any) -> list[tuple[str, list[Tree]]]:
    """Every segment of a python-hl7 message as (id, [field trees from field 1])."""
    out: list[tuple[str, list[Tree]]] = []
    for seg in msg:
        fields = list(seg)
        out.append((str(fields[0]), [py_field_tree(f) for f in fields[1:]]))
    return out
