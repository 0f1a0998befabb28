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
- per-frame distribution (p50/p95/max) of main-thread task time and script time, from a Chrome trace of
  the last ``--trace-seconds`` of the window: every task the renderer's main thread ran (websocket messages,
  timers, rAF callbacks, style, layout, paint, commit and the canvas rasterisation done at commit) is
  assigned to the frame it ran in (frames delimited by the starts of ``ProxyMain::BeginMainFrame``);
  script is the union of the script events (FunctionCall, EvaluateScript, v8.callFunction) in the frame;
- long tasks (> 50 ms) from a PerformanceObserver;
- JS heap (CDP ``JSHeapUsedSize``) every 10 s, after a forced GC at the start and the end, and its trend;
- the machine's load average (``/proc/loadavg``, as ``uptime`` shows it) at the start and the end: the
  machine is shared, and a loaded machine inflates every figure.

``--minutes N`` is the memory run instead: both pages open side by side for N minutes, JS heap sampled every
30 s (and after a forced GC every 5 min), DOM nodes and event listeners beside it; the series and their
slopes go to benchmarks/results/frontend_memory.json.

Headless Chromium with --disable-gpu draws with the software rasteriser, so raster/composite cost is
not representative of a real screen; script, style and layout are. Run:
``.venv/bin/python -m benchmarks.bench_frontend [--seconds 120] [--bays 16] [--trace-seconds 10]``; writes
benchmarks/results/frontend.json. ``.venv/bin/python -m benchmarks.bench_frontend --minutes 30`` writes
benchmarks/results/frontend_memory.json.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, CDPSession, Page, async_playwright

from benchmarks.mllp_load import percentile

RESULTS = Path(__file__).resolve().parent / "results" / "frontend.json"
MEMORY_RESULTS = Path(__file__).resolve().parent / "results" / "frontend_memory.json"
TRACE_CATEGORIES = ["toplevel", "cc", "devtools.timeline", "v8"]
SCRIPT_EVENTS = frozenset({"FunctionCall", "EvaluateScript", "v8.callFunction", "v8.run"})
BEDSIDE_READY = (
    "() => ['ecg_ii', 'pleth', 'co2'].every(c =>"
    " document.querySelector(`[data-channel=\"${c}\"]`)?.dataset.state === 'live')"
)
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
        env={**os.environ, "VIGIL_AUTH": "off"},  # login off (loopback only): the figures are fan-out, not sign-in
    )
    assert proc.stdout is not None
    out = proc.stdout
    for line in out:
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if m:
            # Keep draining its output: a full pipe would block the server (and its shutdown) on a long run.
            threading.Thread(target=lambda: [None for _ in out], name="vigil-stdout", daemon=True).start()
            return proc, m.group(1)
    raise RuntimeError("vigil did not print its URL")


def stop_vigil(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C the server; kill it if it has not stopped within 30 s."""
    proc.send_signal(2)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        print("vigil did not stop within 30 s of Ctrl-C: killed", file=sys.stderr)
        proc.kill()
        proc.wait(timeout=10)


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


def loadavg() -> list[float]:
    """The 1, 5 and 15 min load averages (as ``uptime`` prints them)."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def _merged_ms(spans: list[tuple[float, float]]) -> float:
    """Total length (ms) of the union of (start, end) spans in microseconds."""
    total = 0.0
    end = -1.0
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total / 1000


def per_frame(trace: bytes) -> dict[str, Any]:
    """Main-thread task and script time per frame from a Chrome trace (the renderer with the most frames)."""
    events: list[dict[str, Any]] = json.loads(trace)["traceEvents"]
    mains = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"
    }
    by_thread: dict[tuple[int, int], list[dict[str, Any]]] = {k: [] for k in mains}
    for e in events:
        key = (e.get("pid"), e.get("tid"))
        if key in by_thread and e.get("ph") == "X" and "dur" in e:
            by_thread[key].append(e)
    if not by_thread:
        return {}
    main = max(by_thread.values(), key=lambda xs: sum(1 for e in xs if e["name"] == "ProxyMain::BeginMainFrame"))
    starts = sorted(e["ts"] for e in main if e["name"] == "ProxyMain::BeginMainFrame")
    if len(starts) < 3:
        return {}
    tasks = [(e["ts"], e["ts"] + e["dur"]) for e in main if e["name"] == "ThreadControllerImpl::RunTask"]
    scripts = [(e["ts"], e["ts"] + e["dur"]) for e in main if e["name"] in SCRIPT_EVENTS]
    n = len(starts) - 1

    def bucket(spans: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
        out: list[list[tuple[float, float]]] = [[] for _ in range(n)]
        for a, b in spans:
            i = max(0, bisect.bisect_right(starts, a) - 1)
            while i < n and starts[i] < b:
                lo, hi = max(a, starts[i]), min(b, starts[i + 1])
                if hi > lo:
                    out[i].append((lo, hi))
                i += 1
        return out

    task_ms = [_merged_ms(x) for x in bucket(tasks)]
    script_ms = [_merged_ms(x) for x in bucket(scripts)]
    wall_s = (starts[-1] - starts[0]) / 1e6
    return {
        "frames": n,
        "fps": round(n / wall_s, 1) if wall_s > 0 else None,
        "task_ms": stats(task_ms),
        "script_ms": stats(script_ms),
        "frames_over_4ms_pct": round(100 * sum(1 for x in task_ms if x > 4) / n, 1),
        "frames_over_8ms_pct": round(100 * sum(1 for x in task_ms if x > 8) / n, 1),
    }


async def watch(
    browser: Browser, url: str, ready: str, seconds: float, warmup: float, trace_seconds: float = 10.0
) -> dict[str, Any]:
    """Open ``url``, wait for ``ready`` (a JS predicate), warm up, then measure for ``seconds`` (the last
    ``trace_seconds`` of them also traced, for the per-frame distribution)."""
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
    load0 = loadavg()
    t0 = time.perf_counter()
    await page.evaluate("() => { window.__bench.rec = true; }")
    tracing = False
    untraced = max(0.0, seconds - trace_seconds)
    while (elapsed := time.perf_counter() - t0) < seconds:
        if not tracing and trace_seconds > 0 and elapsed >= untraced:
            # The counters above stop here: tracing itself costs main-thread time.
            b: dict[str, Any] = await page.evaluate("() => { window.__bench.rec = false; return window.__bench; }")
            m1 = await metrics(cdp)
            wall = time.perf_counter() - t0
            await browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
            tracing = True
        step = (untraced if not tracing else seconds) - elapsed
        await asyncio.sleep(max(0.05, min(10.0, step)))
        heap.append((time.perf_counter() - t0, (await metrics(cdp))["JSHeapUsedSize"] / 1e6))
    frame_dist: dict[str, Any] = {}
    if tracing:
        frame_dist = per_frame(await browser.stop_tracing())
    else:
        b = await page.evaluate("() => { window.__bench.rec = false; return window.__bench; }")
        m1 = await metrics(cdp)
        wall = time.perf_counter() - t0
    load1 = loadavg()
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
        "per_frame_traced": frame_dist,
        "long_tasks": {"count": b["longN"], "total_ms": round(b["longMs"], 1), "max_ms": round(b["longMax"], 1)},
        "js_heap_mb": {
            "start_after_gc": round(heap[0][1], 2),
            "max": round(max(v for _, v in heap), 2),
            "end_after_gc": round(after_gc, 2),
            "trend_mb_per_min": round(slope_per_min(heap), 3),
            "samples": [[round(t, 1), round(v, 2)] for t, v in heap],
        },
        "dom_nodes": int(m1.get("Nodes", 0)),
        "loadavg_start_end": [load0, load1],
        "console_errors": errors,
    }
    await page.close()
    return out


async def run(seconds: float, warmup: float, bays: int, trace_seconds: float = 10.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as td:
        proc, url = start_vigil(Path(td), bays)
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    bedside = await watch(
                        browser, url + "bedside.html?bay=bay1", BEDSIDE_READY, seconds, warmup, trace_seconds
                    )
                    print(json.dumps({"bedside": summary(bedside)}), flush=True)
                    station = await watch(
                        browser,
                        url + "station.html",
                        f"() => document.querySelectorAll('vigil-bay-tile[data-state=live]').length === {bays}",
                        seconds,
                        warmup,
                        trace_seconds,
                    )
                    print(json.dumps({"station": summary(station)}), flush=True)
                    version = browser.version
                finally:
                    await browser.close()
        finally:
            stop_vigil(proc)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "chromium": version,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "viewport": VIEWPORT,
        "bays": bays,
        "note": "headless Chromium, --disable-gpu (software raster): script/style/layout figures are meaningful, "
        "paint/composite are not; canvas rasterisation runs on the main thread here and is counted",
        "bedside": bedside,
        "station": station,
    }


async def memory_run(minutes: float, bays: int) -> dict[str, Any]:
    """Bedside and station side by side for ``minutes``: heap, DOM nodes and listeners over time."""
    seconds = minutes * 60
    with tempfile.TemporaryDirectory() as td:
        proc, url = start_vigil(Path(td), bays)
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    pages: dict[str, tuple[Page, CDPSession]] = {}
                    for name, path, ready in (
                        ("bedside", "bedside.html?bay=bay1", BEDSIDE_READY),
                        (
                            "station",
                            "station.html",
                            f"() => document.querySelectorAll('vigil-bay-tile[data-state=live]').length === {bays}",
                        ),
                    ):
                        page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
                        await page.goto(url + path)
                        await page.wait_for_function(ready, timeout=30_000)
                        cdp = await page.context.new_cdp_session(page)
                        await cdp.send("Performance.enable")
                        pages[name] = (page, cdp)
                    await asyncio.sleep(10)
                    series: dict[str, dict[str, list[list[float]]]] = {
                        n: {"heap_mb": [], "heap_after_gc_mb": [], "dom_nodes": [], "listeners": []} for n in pages
                    }
                    loads: list[list[float]] = []
                    t0 = time.perf_counter()
                    next_gc = 0.0
                    while True:
                        t = time.perf_counter() - t0
                        gc = t >= next_gc
                        for n, (_, cdp) in pages.items():
                            m = await metrics(cdp)
                            series[n]["heap_mb"].append([round(t, 1), round(m["JSHeapUsedSize"] / 1e6, 3)])
                            series[n]["dom_nodes"].append([round(t, 1), m.get("Nodes", 0)])
                            series[n]["listeners"].append([round(t, 1), m.get("JSEventListeners", 0)])
                            if gc:
                                await cdp.send("HeapProfiler.collectGarbage")
                                g = (await metrics(cdp))["JSHeapUsedSize"] / 1e6
                                series[n]["heap_after_gc_mb"].append([round(t, 1), round(g, 3)])
                        loads.append([round(t, 1), *loadavg()])
                        if gc:
                            next_gc += 300
                            # Saved as it goes: a run that dies late still leaves its series.
                            MEMORY_RESULTS.write_text(json.dumps({"partial": True, "series": series}) + "\n")
                            print(
                                json.dumps(
                                    {
                                        "t_min": round(t / 60, 1),
                                        **{n: series[n]["heap_after_gc_mb"][-1][1] for n in pages},
                                    }
                                ),
                                flush=True,
                            )
                        if t >= seconds:
                            break
                        await asyncio.sleep(min(30.0, max(0.0, seconds - t)))
                    version = browser.version
                finally:
                    await browser.close()
        finally:
            stop_vigil(proc)

    def slope(points: list[list[float]]) -> float:
        return round(slope_per_min([(p[0], p[1]) for p in points]), 4)

    out: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "chromium": version,
        "minutes": minutes,
        "bays": bays,
        "viewport": VIEWPORT,
        "note": "both pages open at once in one headless Chromium against one `vigil simulate` server; "
        "heap_after_gc is sampled after a forced GC every 5 min (the live heap), heap every 30 s",
        "loadavg": loads,
    }
    for n, s in series.items():
        gc_pts = s["heap_after_gc_mb"]
        out[n] = {
            "heap_after_gc_start_end_mb": [gc_pts[0][1], gc_pts[-1][1]],
            "heap_after_gc_slope_mb_per_min": slope(gc_pts),
            "heap_slope_mb_per_min": slope(s["heap_mb"]),
            "dom_nodes_start_end": [s["dom_nodes"][0][1], s["dom_nodes"][-1][1]],
            "listeners_start_end": [s["listeners"][0][1], s["listeners"][-1][1]],
            "series": s,
        }
    return out


def summary(r: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one page."""
    pf = r.get("per_frame_traced") or {}
    return {
        "fps": r["fps"],
        "raf_script_ms_p50_p99": [r["raf_script_ms_per_frame"].get("p50"), r["raf_script_ms_per_frame"].get("p99")],
        "main_thread_busy_pct": r["main_thread"]["busy_pct"],
        "task_ms_per_frame": r["main_thread"]["task_ms_per_frame"],
        "script_ms_per_frame": r["main_thread"]["script_ms_per_frame"],
        "traced_task_ms_p50_p95_max": [pf.get("task_ms", {}).get(k) for k in ("p50", "p95", "max")],
        "traced_script_ms_p50_p95_max": [pf.get("script_ms", {}).get(k) for k in ("p50", "p95", "max")],
        "long_tasks": r["long_tasks"]["count"],
        "heap_mb_start_end": [r["js_heap_mb"]["start_after_gc"], r["js_heap_mb"]["end_after_gc"]],
        "heap_trend_mb_per_min": r["js_heap_mb"]["trend_mb_per_min"],
        "loadavg_start_end": r.get("loadavg_start_end"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120, help="measurement time per page")
    ap.add_argument("--warmup", type=float, default=10, help="seconds before measuring (rings fill, JIT warms)")
    ap.add_argument("--trace-seconds", type=float, default=10, help="last part of the window traced (0: none)")
    ap.add_argument("--bays", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=None, help="memory run: both pages for this long")
    args = ap.parse_args()
    if args.minutes is not None:
        mem = asyncio.run(memory_run(args.minutes, args.bays))
        MEMORY_RESULTS.parent.mkdir(exist_ok=True)
        MEMORY_RESULTS.write_text(json.dumps(mem, indent=1) + "\n")
        brief = {n: {k: v for k, v in mem[n].items() if k != "series"} for n in ("bedside", "station")}
        print(json.dumps(brief, indent=2))
        print(f"wrote {MEMORY_RESULTS}")
        return
    out = asyncio.run(run(args.seconds, args.warmup, args.bays, args.trace_seconds))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({"bedside": summary(out["bedside"]), "station": summary(out["station"])}, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
