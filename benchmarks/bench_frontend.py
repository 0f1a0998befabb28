"""Browser main-thread cost per frame and JS heap of the bedside and station pages (not a test).

Against ``vigil simulate --scenario uneventful --bays 16`` (real server, real Chromium via Playwright):

1. **bedside** of bay1: three full-rate waveforms (ECG 250 Hz, pleth 125 Hz, CO2 62.5 Hz) and the numerics;
2. **station**: 16 tiles with decimated pleth strips and numerics.

Each page is watched for ``--seconds`` after a warm-up, one at a time (they would share the CPUs). Measured:

- frames: a requestAnimationFrame loop counts frames and their intervals (p50/p95/p99/max);
- rAF script time per frame: every page rAF callback is wrapped and timed (the waveform drawing and the
  coalesced renders run there);
- main-thread time: Chrome's own counters through CDP ``Performance.getMetrics`` (TaskDuration,
  ScriptDuration, LayoutDuration, RecalcStyleDuration), which also count websocket message handling and the
  4 Hz timer renders, as busy % of wall time and ms per frame;
- long tasks (> 50 ms) from a PerformanceObserver;
- JS heap (CDP ``JSHeapUsedSize``) every 10 s, after a forced GC at the start and the end, and its trend.

Headless Chromium with --disable-gpu draws with the software rasteriser, so raster/composite cost is
not representative of a real screen; script, style and layout are. Run:
``.venv/bin/python -m benchmarks.bench_frontend [--seconds 120] [--bays 16]``; writes
benchmarks/results/frontend.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, CDPSession, Page, async_playwright

from benchmarks.mllp_load import percentile

RESULTS = Path(__file__).resolve().parent / "results" / "frontend.json"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1920, "height": 1080}

# Installed before any page script: frame loop, rAF callback timing, long tasks.
PROBE_JS = """
(() => {
  const B = { rec: false, frames: 0, intervals: [], rafMs: [], longN: 0, longMs: 0, longMax: 0 };
  window.__bench = B;
  const raf = window.requestAnimationFrame.bind(window);
  let acc = 0;
  window.requestAnimationFrame = (cb) => raf((ts) => {
    const t0 = performance.now();
    try { cb(ts); } finally { acc += performance.now() - t0; }
  });
  let last = null;
  const loop = (ts) => {
    if (B.rec) {
      B.frames += 1;
      if (last !== null) B.intervals.push(ts - last);
      B.rafMs.push(acc);
    }
    acc = 0;
    last = ts;
    raf(loop);
  };
  raf(loop);
  try {
    new PerformanceObserver((list) => {
      if (!B.rec) return;
      for (const e of list.getEntries()) {
        B.longN += 1; B.longMs += e.duration; B.longMax = Math.max(B.longMax, e.duration);
      }
    }).observe({ type: 'longtask', buffered: false });
  } catch { /* no longtask support */ }
})();
"""


def start_vigil(tmp: Path, bays: int) -> tuple[subprocess.Popen[str], str]:
    """``vigil simulate`` with ``bays`` uneventful bays on an ephemeral port; returns it and its URL."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "app", "simulate", "--scenario", "uneventful", "--bays", str(bays)),
            *("--port", "0", "--db", str(tmp / "bench.sqlite3")),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if m:
            return proc, m.group(1)
    raise RuntimeError("vigil did not print its URL")


async def metrics(cdp: CDPSession) -> dict[str, float]:
    """Chrome's performance counters (seconds, bytes, counts)."""
    got = await cdp.send("Performance.getMetrics")
    return {m["name"]: float(m["value"]) for m in got["metrics"]}


def stats(values: list[float]) -> dict[str, float]:
    """mean / p50 / p95 / p99 / max, rounded to 0.01."""
    if not values:
        return {}
    return {
        "mean": round(sum(values) / len(values), 3),
        "p50": round(percentile(values, 50), 3),
        "p95": round(percentile(values, 95), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
    }


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    den = sum((p[0] - mx) ** 2 for p in points)
    return 0.0 if den == 0 else 60 * sum((p[0] - mx) * (p[1] - my) for p in points) / den


async def watch(browser: Browser, url: str, ready: str, seconds: float, warmup: float) -> dict[str, Any]:
    """Open ``url``, wait for ``ready`` (a JS predicate), warm up, then measure for ``seconds``."""
    page: Page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.add_init_script(PROBE_JS)
    await page.goto(url)
    await page.wait_for_function(ready, timeout=30_000)
    await page.wait_for_timeout(warmup * 1000)
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    await cdp.send("HeapProfiler.collectGarbage")
    m0 = await metrics(cdp)
    heap: list[tuple[float, float]] = [(0.0, m0["JSHeapUsedSize"] / 1e6)]
    t0 = time.perf_counter()
    await page.evaluate("() => { window.__bench.rec = true; }")
    while (elapsed := time.perf_counter() - t0) < seconds:
        await asyncio.sleep(min(10.0, seconds - elapsed))
        heap.append((time.perf_counter() - t0, (await metrics(cdp))["JSHeapUsedSize"] / 1e6))
    b: dict[str, Any] = await page.evaluate("() => { window.__bench.rec = false; return window.__bench; }")
    m1 = await metrics(cdp)
    wall = time.perf_counter() - t0
    await cdp.send("HeapProfiler.collectGarbage")
    after_gc = (await metrics(cdp))["JSHeapUsedSize"] / 1e6
    frames = max(1, int(b["frames"]))

    def d(name: str) -> float:
        return m1.get(name, 0.0) - m0.get(name, 0.0)

    out = {
        "url": url.split("/", 3)[-1],
        "seconds": round(wall, 1),
        "frames": b["frames"],
        "fps": round(b["frames"] / wall, 1),
        "frame_interval_ms": stats(b["intervals"]),
        "raf_script_ms_per_frame": stats(b["rafMs"]),
        "main_thread": {
            "busy_pct": round(100 * d("TaskDuration") / wall, 1),
            "task_ms_per_frame": round(1000 * d("TaskDuration") / frames, 3),
            "script_ms_per_frame": round(1000 * d("ScriptDuration") / frames, 3),
            "style_ms_per_frame": round(1000 * d("RecalcStyleDuration") / frames, 3),
            "layout_ms_per_frame": round(1000 * d("LayoutDuration") / frames, 3),
            "layouts_per_s": round(d("LayoutCount") / wall, 1),
            "style_recalcs_per_s": round(d("RecalcStyleCount") / wall, 1),
        },
        "long_tasks": {"count": b["longN"], "total_ms": round(b["longMs"], 1), "max_ms": round(b["longMax"], 1)},
        "js_heap_mb": {
            "start_after_gc": round(heap[0][1], 2),
            "max": round(max(v for _, v in heap), 2),
            "end_after_gc": round(after_gc, 2),
            "trend_mb_per_min": round(slope_per_min(heap), 3),
            "samples": [[round(t, 1), round(v, 2)] for t, v in heap],
        },
        "dom_nodes": int(m1.get("Nodes", 0)),
        "console_errors": errors,
    }
    await page.close()
    return out


async def run(seconds: float, warmup: float, bays: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as td:
        proc, url = start_vigil(Path(td), bays)
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    bedside = await watch(
                        browser,
                        url + "bedside.html?bay=bay1",
                        "() => ['ecg_ii', 'pleth', 'co2'].every(c =>"
                        " document.querySelector(`[data-channel=\"${c}\"]`)?.dataset.state === 'live')",
                        seconds,
                        warmup,
                    )
                    print(json.dumps({"bedside": summary(bedside)}), flush=True)
                    station = await watch(
                        browser,
                        url + "station.html",
                        f"() => document.querySelectorAll('vigil-bay-tile[data-state=live]').length === {bays}",
                        seconds,
                        warmup,
                    )
                    print(json.dumps({"station": summary(station)}), flush=True)
                    version = browser.version
                finally:
                    await browser.close()
        finally:
            proc.send_signal(2)
            proc.wait(timeout=15)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "chromium": version,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "viewport": VIEWPORT,
        "bays": bays,
        "note": "headless Chromium, --disable-gpu (software raster): script/style/layout figures are meaningful, "
        "paint/composite are not",
        "bedside": bedside,
        "station": station,
    }


def summary(r: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one page."""
    return {
        "fps": r["fps"],
        "raf_script_ms_p50_p99": [r["raf_script_ms_per_frame"].get("p50"), r["raf_script_ms_per_frame"].get("p99")],
        "main_thread_busy_pct": r["main_thread"]["busy_pct"],
        "task_ms_per_frame": r["main_thread"]["task_ms_per_frame"],
        "long_tasks": r["long_tasks"]["count"],
        "heap_mb_start_end": [r["js_heap_mb"]["start_after_gc"], r["js_heap_mb"]["end_after_gc"]],
        "heap_trend_mb_per_min": r["js_heap_mb"]["trend_mb_per_min"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120, help="measurement time per page")
    ap.add_argument("--warmup", type=float, default=10, help="seconds before measuring (rings fill, JIT warms)")
    ap.add_argument("--bays", type=int, default=16)
    args = ap.parse_args()
    out = asyncio.run(run(args.seconds, args.warmup, args.bays))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({"bedside": summary(out["bedside"]), "station": summary(out["station"])}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
