"""Parse + decode cost per PCD-01 message: Vigil's lean codec vs python-hl7 0.4.5.

Uses the GE Aware Gateway fixture (9 OBX, the message PROTOCOLS.md §3 measured python-hl7 on). Prints a
table and writes benchmarks/results/hl7_parse.json. Run: ``.venv/bin/python -m benchmarks.bench_hl7_parse``.
"""

from __future__ import annotations

import json
import platform
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from monitors.protocols.ack import build_ack
from monitors.protocols.hl7 import parse
from monitors.protocols.mllp import MLLPFramer, frame
from monitors.protocols.pcd01 import decode

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT.parent / "shared" / "fixtures" / "hl7" / "ge-aware-gateway-pcd01_crlf.hl7"
OUT = ROOT / "benchmarks" / "results" / "hl7_parse.json"
RECEIVED = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def per_call_us(fn: Callable[[], object], number: int, repeat: int = 7) -> float:
    """Best-of-``repeat`` mean time per call, in microseconds."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> dict[str, object]:
    """Run the benchmark, print it and save it as JSON."""
    raw = FIXTURE.read_bytes()
    payload = raw.replace(b"\r\n", b"\r")  # what a device sends on the wire
    text = payload.decode("latin-1")
    framed = frame(payload)
    results: dict[str, float] = {
        "vigil_parse_us": per_call_us(lambda: parse(text), 20_000),
        "vigil_decode_us": per_call_us(lambda: decode(payload, received=RECEIVED), 5_000),
        "vigil_frame_decode_ack_us": per_call_us(
            lambda: build_ack(decode(MLLPFramer(1 << 20).feed(framed)[0], received=RECEIVED), "AA", now=RECEIVED),  # type: ignore[arg-type]
            5_000,
        ),
    }
    try:
        import hl7

        results["python_hl7_parse_us"] = per_call_us(lambda: hl7.parse(text), 1_000)
        results["python_hl7_parse_and_create_ack_us"] = per_call_us(lambda: hl7.parse(text).create_ack(), 1_000)
        results["speedup_parse"] = results["python_hl7_parse_us"] / results["vigil_parse_us"]
        results["speedup_decode_vs_python_hl7_parse"] = results["python_hl7_parse_us"] / results["vigil_decode_us"]
    except ImportError:  # python-hl7 is a dev dependency only
        pass
    report: dict[str, object] = {
        "fixture": FIXTURE.name,
        "obx_segments": text.count("\rOBX|"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "results_us": {k: round(v, 2) for k, v in results.items()},
        "target": "vigil_decode_us well under 200 µs",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    width = max(len(k) for k in results)
    for k, v in results.items():
        unit = "×" if k.startswith("speedup") else "µs"
        print(f"{k:<{width}}  {v:9.2f} {unit}")
    print(f"saved {OUT.relative_to(ROOT)}")
    return report


if __name__ == "__main__":
    main()
