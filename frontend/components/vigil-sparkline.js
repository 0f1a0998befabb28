// <vigil-sparkline bay="bay1" param="hr">: the last 30 min of one numeric as a tiny line (station tiles).
//
// History comes once per bay from GET /api/bays/{bay}/trends?since=now−30 min (HR, SpO2, NIBP sys; min/max
// downsampled on the server, so a 40 s desaturation still dips), then the live `vitals` of every bay are
// folded into the same 20 s min/max buckets. The sparklines are checked together every 5 s from a timer
// (never from the animation-frame loop: 48 tiny canvases must not cost the waveforms' frame budget), and a
// canvas is redrawn only when its points changed (a bucket completes every 20 s) or its 30 min window has
// slid by a pixel or more since it was drawn; the others are left alone (an untouched canvas costs nothing). Fixed per-parameter scales (widened by data outside them) so tiles compare at a glance;
// silences break the line; the newest point is a dot.
//
// Hooks: data-points (points in the window), data-drawn (draws so far).

import { context } from '../lib/context.js';
import { setAttr } from '../lib/format.js';
import { CANVAS_COLOUR, PARAM_COLOUR } from '../lib/params.js';
import { fetchTrends, LiveBuckets, readingPoint } from '../lib/trend-data.js';

export const SPARK_WINDOW_S = 1800;
export const SPARK_PARAMS = ['hr', 'spo2', 'nibp_sys'];
const DRAW_MS = 5000;
const RETRY_MS = 15000;
const SCALE = { hr: [40, 140], spo2: [85, 100], nibp_sys: [80, 180] };
const EPISODIC = new Set(['nibp_sys']);

/** Per bay: {state, series: Map(param → {pts: [{t, v}], live: LiveBuckets})}. */
const cache = new Map();
const elements = new Set();
let listening = null;
let timer = null;
let seenHello = false;

function listen() {
  const { store } = context();
  if (!store || listening === store) return store;
  listening = store;
  store.addEventListener('change', (ev) => {
    const { bay, kind } = ev.detail;
    if (kind === 'hello') {
      // A reconnect: readings were missed while the link was down; fetch the window again.
      if (seenHello) for (const entry of cache.values()) if (entry.state === 'ready') entry.stale = true;
      seenHello = true;
      return;
    }
    if (kind !== 'vitals') return;
    const entry = cache.get(bay);
    const b = store.bays.get(bay);
    if (!entry || entry.state !== 'ready' || !b) return;
    for (const param of SPARK_PARAMS) {
      const p = readingPoint(b, b.vitals.get(param));
      if (p) entry.series.get(param).live.add(p.t, p.v, p.tr);
    }
  });
  return store;
}

async function load(bay) {
  const store = listen();
  const prev = cache.get(bay);
  const entry = { state: 'loading', series: prev?.series ?? null, stale: false };
  cache.set(bay, entry);
  const now = store ? store.clock.now() : Date.now() / 1000;
  try {
    const data = await fetchTrends(bay, { since: Math.floor(now - SPARK_WINDOW_S), params: SPARK_PARAMS });
    const series = new Map();
    for (const param of SPARK_PARAMS) {
      const s = data.series.find((x) => x.param === param) ?? { t: [], v: [] };
      const pts = s.t.map((t, i) => ({ t, v: s.v[i] }));
      const last = s.t.length ? s.t[s.t.length - 1] : null;
      const live = EPISODIC.has(param) ? new LiveBuckets(0.001, Infinity, last) : new LiveBuckets(data.bucket_s, undefined, last);
      series.set(param, { pts, live });
    }
    entry.series = series;
    entry.state = 'ready';
  } catch (err) {
    console.warn('vigil: sparkline history unavailable:', err);
    entry.state = 'error';
    setTimeout(() => { if (cache.get(bay) === entry) cache.delete(bay); }, RETRY_MS);
  }
  drawAll();
}

/** Fold completed live buckets into every bay's series and drop what fell out of the window. */
function advance(now) {
  for (const [bay, entry] of cache) {
    if (entry.stale && entry.state === 'ready') {
      load(bay);
      continue;
    }
    if (entry.state !== 'ready') continue;
    for (const s of entry.series.values()) {
      for (const p of s.live.take(now)) s.pts.push(p);
      const cut = now - SPARK_WINDOW_S;
      let k = 0;
      while (k < s.pts.length && s.pts[k].t < cut) k += 1;
      if (k) s.pts.splice(0, k);
    }
  }
}

function drawAll() {
  const { store } = context();
  const now = store ? store.clock.now() : Date.now() / 1000;
  advance(now);
  for (const el of elements) {
    const bay = el.getAttribute('bay');
    if (bay && !cache.has(bay)) load(bay); // first use, or a retry after a failed fetch
    el.draw(now);
  }
}

class VigilSparkline extends HTMLElement {
  connectedCallback() {
    if (!this._canvas) {
      this._canvas = document.createElement('canvas');
      this._canvas.setAttribute('aria-hidden', 'true');
      this.append(this._canvas);
      this._draws = 0;
    }
    elements.add(this);
    if (timer === null) timer = setInterval(drawAll, DRAW_MS);
    this._resize = new ResizeObserver(() => { this._sized = false; this.draw(); });
    this._resize.observe(this);
    const bay = this.getAttribute('bay');
    if (bay && !cache.has(bay)) load(bay);
    else this.draw();
  }

  disconnectedCallback() {
    elements.delete(this);
    this._resize?.disconnect();
    if (!elements.size && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  }

  draw(now) {
    const { store } = context();
    const t1 = now ?? (store ? store.clock.now() : Date.now() / 1000);
    const bay = this.getAttribute('bay');
    const param = this.getAttribute('param');
    const c = this._canvas;
    if (!this._sized) {
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(1, Math.round(this.clientWidth * dpr));
      const hgt = Math.max(1, Math.round(this.clientHeight * dpr));
      if (c.width !== w) c.width = w;
      if (c.height !== hgt) c.height = hgt;
      this._sized = true;
    }
    const ctx = c.getContext('2d');
    const W = c.width;
    const H = c.height;
    const entry = cache.get(bay);
    const pts = entry?.state === 'ready' ? entry.series.get(param)?.pts ?? [] : [];
    setAttr(this, 'data-points', pts.length);
    // Skip the redraw when nothing it shows changed: same points, same size, window moved < 1 px.
    const lastPt = pts.length ? pts[pts.length - 1] : null;
    const sig = `${W}x${H}:${pts.length}:${pts[0]?.t ?? ''}:${lastPt?.t ?? ''}:${lastPt?.v ?? ''}`;
    const pxPerS = (W - 4) / SPARK_WINDOW_S;
    if (sig === this._sig && this._drawnAt !== undefined && Math.abs(t1 - this._drawnAt) * pxPerS < 1) return;
    this._sig = sig;
    this._drawnAt = t1;
    ctx.clearRect(0, 0, W, H);
    if (!pts.length || W < 4 || H < 4) return;
    let [lo, hi] = SCALE[param] ?? [0, 100];
    for (const p of pts) {
      if (p.v === null) continue;
      if (p.v < lo) lo = p.v;
      if (p.v > hi) hi = p.v;
    }
    const t0 = t1 - SPARK_WINDOW_S;
    const pad = Math.max(1, H * 0.08);
    const x = (t) => ((t - t0) / SPARK_WINDOW_S) * (W - 4) + 1;
    const y = (v) => H - pad - ((v - lo) / (hi - lo || 1)) * (H - 2 * pad);
    const colour = CANVAS_COLOUR[PARAM_COLOUR[param] ?? 'other'] ?? CANVAS_COLOUR.other;
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = Math.max(1, (window.devicePixelRatio || 1) * 1.25);
    ctx.lineJoin = 'round';
    ctx.beginPath();
    let pen = false;
    let last = null;
    for (const p of pts) {
      if (p.v === null) { pen = false; continue; }
      const px = x(p.t);
      const py = y(p.v);
      if (pen && !EPISODIC.has(param)) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      if (EPISODIC.has(param)) ctx.rect(px - 1.5, py - 1.5, 3, 3);
      pen = true;
      last = { px, py };
    }
    ctx.stroke();
    if (last) {
      ctx.beginPath();
      ctx.arc(last.px, last.py, Math.max(1.5, H * 0.07), 0, Math.PI * 2);
      ctx.fill();
    }
    this._draws += 1;
    setAttr(this, 'data-drawn', this._draws);
  }
}

customElements.define('vigil-sparkline', VigilSparkline);
