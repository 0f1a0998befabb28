// Sweeping waveform renderer for one channel on one <canvas>.
//
// Each sample is placed by its own time: x = ((t mod sweep) / sweep) · width. The display runs ``delay``
// seconds behind the server clock so that 0.2 s chunks are in the buffer before the sweep reaches their
// time; the trace ends at the cursor, and an erase bar (a blank band) runs just ahead of it, over the oldest
// part of the previous sweep. Missing samples (a time gap) are left blank; a flat line is only ever drawn
// from real samples.
//
// Drawing is incremental, as a monitor's sweep is: a frame blanks only the few pixels the erase bar moved
// into (and redraws the scale and label there) and strokes only the samples that arrived since the last
// frame. Rasterising the whole window every frame cost most of the page's main-thread time (the canvas
// is rasterised on the main thread when the frame is committed). The whole window is redrawn only when it
// must be: a resize, a state or channel change, a jump of the display time (seek, larger display delay),
// or a new vertical scale (auto gain is re-evaluated once a second and only applied on a real change).
// The canvas size comes from a ResizeObserver, never from reading layout inside the frame.

import { CANVAS_COLOUR } from './params.js';

const BG = '#000000';
const ERASE_FRACTION = 0.04; // erase bar width, as a fraction of the sweep
const NO_DATA_COLOUR = '#c8c8c8';
const STALE_TRACE_COLOUR = '#3c4148';

/** Per-channel display defaults: sweep seconds and vertical range. */
export const CHANNEL_DEFAULTS = Object.freeze({
  ecg_ii: { colour: 'ecg', sweepS: 6, range: { mode: 'fixed', min: -1.5, max: 1.5 }, label: 'ECG II', unit: 'mV' },
  ecg_i: { colour: 'ecg', sweepS: 6, range: { mode: 'fixed', min: -1.5, max: 1.5 }, label: 'ECG I', unit: 'mV' },
  pleth: { colour: 'spo2', sweepS: 6, range: { mode: 'auto' }, label: 'Pleth', unit: '' },
  co2: { colour: 'co2', sweepS: 12, range: { mode: 'fixed', min: 0, max: 50, expand: true }, label: 'CO₂', unit: 'mmHg' },
});


// One ResizeObserver for every waveform canvas: sizes arrive outside the frame, so a frame never forces a
// layout by reading clientWidth/clientHeight.
const canvasSizes = new WeakMap();
const renderers = new WeakMap();
let sizeObserver = null;

function renderersOf(canvas) {
  let set = renderers.get(canvas);
  if (!set) { set = new Set(); renderers.set(canvas, set); }
  return set;
}

function observeSize(canvas) {
  if (!sizeObserver) {
    sizeObserver = new ResizeObserver((entries) => {
      for (const e of entries) {
        const box = e.contentBoxSize?.[0];
        const w = box ? box.inlineSize : e.contentRect.width;
        const h = box ? box.blockSize : e.contentRect.height;
        canvasSizes.set(e.target, { w, h });
        for (const r of renderers.get(e.target) ?? []) r._setSize(w, h);
      }
    });
  }
  if (!canvasSizes.has(canvas)) {
    canvasSizes.set(canvas, null);
    sizeObserver.observe(canvas);
  }
}

export class WaveformRenderer {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {object} opts {channel, sweepS, colour, range, label, unit, compact}
   */
  constructor(canvas, opts) {
    const d = CHANNEL_DEFAULTS[opts.channel] ?? { colour: 'other', sweepS: 6, range: { mode: 'auto' }, label: opts.channel, unit: '' };
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d', { alpha: false });
    this.channel = opts.channel;
    this.sweepS = opts.sweepS ?? d.sweepS;
    this.colour = CANVAS_COLOUR[opts.colour ?? d.colour] ?? CANVAS_COLOUR.other;
    this.range = { ...(opts.range ?? d.range) };
    this.label = opts.label ?? d.label;
    this.unit = opts.unit ?? d.unit;
    this.compact = Boolean(opts.compact);
    this.samplesDrawn = 0; // distinct samples that have reached the screen so far
    this.fullDraws = 0; // whole-window redraws so far (a diagnostic: should be rare)
    this._drawnUntil = -Infinity; // time of the newest sample counted in samplesDrawn
    this._lo = null; // vertical scale in use
    this._hi = null;
    this._rangeCheckAt = -Infinity; // display time of the last auto-gain evaluation
    this._cssW = 0;
    this._cssH = 0;
    this._dpr = 0;
    this._sizeKnown = false;
    this._dirty = true; // the next frame redraws the whole window
    this._lastD = null; // display time the canvas shows up to
    this._prev = null; // {t, x, y} of the last sample stroked (the next segment starts there)
    this._state = null;
    this._wave = null;
    const sized = canvasSizes.get(canvas);
    if (sized) this._setSize(sized.w, sized.h);
    observeSize(canvas);
    renderersOf(canvas).add(this);
  }

  /** Redraw the whole window at the next frame (the canvas was shared with another channel, …). */
  invalidate() {
    this._dirty = true;
  }

  _setSize(w, h) {
    this._cssW = w;
    this._cssH = h;
    this._sizeKnown = true;
    this._dirty = true;
  }

  _fit() {
    if (!this._sizeKnown) {
      // Before the observer's first report (one frame): read it once.
      this._setSize(this.canvas.clientWidth, this.canvas.clientHeight);
    }
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this._cssW * dpr));
    const h = Math.max(1, Math.round(this._cssH * dpr));
    if (dpr !== this._dpr || this.canvas.width !== w || this.canvas.height !== h) {
      this._dpr = dpr;
      if (this.canvas.width !== w) this.canvas.width = w;
      if (this.canvas.height !== h) this.canvas.height = h;
      this._dirty = true;
    }
    if (this._dirty) this.ctx.setTransform(this._dpr, 0, 0, this._dpr, 0, 0);
    return this._cssW > 0 && this._cssH > 0;
  }

  /**
   * Draw one frame.
   * @param {import('./store.js').WaveChannel|undefined} wave
   * @param {number} now    server time (s)
   * @param {number} delay  display delay (s)
   * @param {'live'|'nodata'} state
   */
  draw(wave, now, delay, state) {
    if (!this._fit()) return;
    const D = now - delay; // display time at the cursor
    const sweep = this.sweepS;
    if (state !== this._state || wave !== this._wave) this._dirty = true;
    if (this._lastD === null || D < this._lastD || D - this._lastD > sweep * 0.5) this._dirty = true;
    this._state = state;
    this._wave = wave;
    const ring = wave?.ring;
    // The vertical scale: re-evaluated on a full redraw and once a second; a change redraws everything.
    if (this._dirty || this._lo === null || Math.abs(D - this._rangeCheckAt) >= 1) {
      this._rangeCheckAt = D;
      const [lo, hi] = this._yRange(ring, D);
      if (lo !== this._lo || hi !== this._hi) {
        this._lo = lo;
        this._hi = hi;
        this._dirty = true;
      }
    }
    if (this._dirty) this._drawAll(ring, wave, D);
    else this._drawSince(ring, wave, D);
    this._lastD = D;
    if (state === 'nodata') this._drawNoData(this.ctx, this._cssW, this._cssH);
  }

  _geometry() {
    const W = this._cssW;
    const H = this._cssH;
    const padTop = this.compact ? 3 : 18;
    const padBottom = this.compact ? 3 : 6;
    const plotH = Math.max(1, H - padTop - padBottom);
    return { W, H, padTop, plotH };
  }

  _xOf(t) {
    const s = this.sweepS;
    return ((((t / s) % 1) + 1) % 1) * this._cssW;
  }

  /** The whole window: blank, scale, label, every sample from the erase bar's far edge to the cursor. */
  _drawAll(ring, wave, D) {
    this._dirty = false;
    this.fullDraws += 1;
    const ctx = this.ctx;
    const { W, H } = this._geometry();
    ctx.fillStyle = BG;
    ctx.fillRect(0, 0, W, H);
    this._drawStatic(ctx);
    this._prev = null;
    const from = D - this.sweepS + this.sweepS * ERASE_FRACTION;
    if (ring && ring.length) this._stroke(ring, wave, ring.indexAfter(from), ring.indexAfter(D));
  }

  /** One frame's worth: move the erase bar on, stroke the samples that reached the cursor since last frame. */
  _drawSince(ring, wave, D) {
    const ctx = this.ctx;
    const { H } = this._geometry();
    const gapS = this.sweepS * ERASE_FRACTION;
    // The erase bar spans (cursor, cursor + gap]; what it newly covers is (lastD + gap, D + gap].
    const xa = this._xOf(this._lastD + gapS);
    const xb = this._xOf(D + gapS);
    const band = (x0, x1) => {
      if (x1 <= x0) return;
      const a = Math.floor(x0);
      const w = Math.ceil(x1) - a + 1;
      ctx.save();
      ctx.beginPath();
      ctx.rect(a, 0, w, H);
      ctx.clip();
      ctx.fillStyle = BG;
      ctx.fillRect(a, 0, w, H);
      this._drawStatic(ctx);
      ctx.restore();
    };
    const sweep = this.sweepS;
    if (Math.floor((this._lastD + gapS) / sweep) === Math.floor((D + gapS) / sweep)) band(xa, xb);
    else { band(xa, this._cssW); band(0, xb); } // the bar wrapped to the left edge
    if (ring && ring.length) this._stroke(ring, wave, ring.indexAfter(this._lastD), ring.indexAfter(D));
  }

  /** Stroke ring samples [k0, k1), continuing from the last stroked sample when it is adjacent. */
  _stroke(ring, wave, k0, k1) {
    if (k1 <= k0) return;
    const ctx = this.ctx;
    const { padTop, plotH } = this._geometry();
    const lo = this._lo;
    const hi = this._hi;
    const fs = wave.fs || 1;
    const maxGap = Math.max(2.5 / fs, 0.04);
    const yOf = (v) => padTop + (1 - (v - lo) / (hi - lo)) * plotH;
    // Without live data the remaining trace is drawn grey and faint: it is history, not the patient now.
    ctx.strokeStyle = this._state === 'live' ? this.colour : STALE_TRACE_COLOUR;
    ctx.lineWidth = this.compact ? 1.25 : 2;
    ctx.lineJoin = 'round';
    ctx.lineCap = 'round';
    ctx.beginPath();
    const p = this._prev;
    let prevT = p ? p.t : -Infinity;
    let prevX = p ? p.x : -Infinity;
    if (p) ctx.moveTo(p.x, p.y);
    let newSamples = 0;
    let x = 0;
    let y = 0;
    let t = 0;
    for (let k = k0; k < k1; k += 1) {
      t = ring.timeAt(k);
      x = this._xOf(t);
      y = yOf(ring.valueAt(k));
      if (t - prevT > maxGap || x < prevX) {
        ctx.moveTo(x, y);
        // A lone sample still shows as a dot.
        ctx.lineTo(x + 0.01, y);
      } else {
        ctx.lineTo(x, y);
      }
      prevT = t;
      prevX = x;
      if (t > this._drawnUntil) newSamples += 1;
    }
    ctx.stroke();
    this._prev = { t, x, y };
    if (newSamples) {
      this.samplesDrawn += newSamples;
      this._drawnUntil = ring.timeAt(k1 - 1);
    }
  }

  /** The vertical scale for the window ending at display time ``D``. */
  _yRange(ring, D) {
    const r = this.range;
    let k0 = 0;
    let k1 = 0;
    if (ring && ring.length) {
      k0 = ring.indexAfter(D - this.sweepS);
      k1 = ring.indexAfter(D);
    }
    if (r.mode === 'fixed') {
      let max = r.max;
      if (r.expand && k1 > k0) {
        let vmax = -Infinity;
        for (let k = k0; k < k1; k += 1) vmax = Math.max(vmax, ring.valueAt(k));
        if (vmax > max) max = Math.ceil(vmax / 25) * 25;
      }
      return [r.min, max];
    }
    // Auto gain: expand at once to fit; shrink only when the signal uses less than 60 % of the scale (so one
    // beat does not rescale the trace, and the trace is not redrawn for every small change).
    if (k1 > k0) {
      let vmin = Infinity;
      let vmax = -Infinity;
      for (let k = k0; k < k1; k += 1) {
        const v = ring.valueAt(k);
        if (v < vmin) vmin = v;
        if (v > vmax) vmax = v;
      }
      let span = vmax - vmin;
      if (!(span > 0)) span = Math.max(1, Math.abs(vmax) * 0.1);
      const tlo = vmin - span * 0.08;
      const thi = vmax + span * 0.08;
      const lo = this._lo;
      const hi = this._hi;
      const fits = lo !== null && hi > lo && tlo >= lo && thi <= hi;
      if (!fits || (thi - tlo) < 0.6 * (hi - lo)) return [tlo, thi];
      return [lo, hi];
    }
    if (this._lo === null || !(this._hi > this._lo)) return [-1, 1];
    return [this._lo, this._hi];
  }

  /** Scale marks and the channel label (drawn whole, or clipped to the band the erase bar blanks). */
  _drawStatic(ctx) {
    const { W, H, padTop, plotH } = this._geometry();
    this._drawScale(ctx, W, H, padTop, plotH, this._lo ?? -1, this._hi ?? 1);
    this._drawLabel(ctx);
  }

  _drawScale(ctx, W, H, padTop, plotH, lo, hi) {
    if (this.compact) return;
    ctx.save();
    ctx.font = '12px system-ui, sans-serif';
    ctx.fillStyle = this.colour;
    ctx.globalAlpha = 0.55;
    if (this.range.mode === 'fixed' && this.unit === 'mmHg') {
      // Capnogram: dashed lines at the top of the scale and at zero, labelled.
      ctx.strokeStyle = this.colour;
      ctx.setLineDash([4, 6]);
      ctx.lineWidth = 1;
      for (const v of [hi, lo]) {
        const y = Math.round(padTop + (1 - (v - lo) / (hi - lo)) * plotH) + 0.5;
        ctx.beginPath();
        ctx.moveTo(0, y);
        ctx.lineTo(W, y);
        ctx.stroke();
        ctx.fillText(String(v), W - 28, v === hi ? y + 13 : y - 4);
      }
    } else if (this.range.mode === 'fixed' && this.unit === 'mV') {
      // ECG: a 1 mV calibration bar at the left.
      const y0 = padTop + (1 - (0 - lo) / (hi - lo)) * plotH;
      const y1 = padTop + (1 - (1 - lo) / (hi - lo)) * plotH;
      ctx.strokeStyle = this.colour;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(4, y0);
      ctx.lineTo(10, y0);
      ctx.lineTo(10, y1);
      ctx.lineTo(16, y1);
      ctx.stroke();
      ctx.fillText('1 mV', 20, y1 + 4);
    }
    ctx.restore();
  }

  _drawNoData(ctx, W, H) {
    ctx.save();
    ctx.fillStyle = NO_DATA_COLOUR;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.font = `${this.compact ? 'bold 13px' : 'bold 22px'} system-ui, sans-serif`;
    const tw = ctx.measureText('NO DATA').width;
    const bh = this.compact ? 20 : 34;
    ctx.fillStyle = '#1e2227';
    ctx.fillRect(W / 2 - tw / 2 - 12, H / 2 - bh / 2, tw + 24, bh);
    ctx.fillStyle = NO_DATA_COLOUR;
    ctx.fillText('NO DATA', W / 2, H / 2 + 1);
    ctx.restore();
  }

  _drawLabel(ctx) {
    ctx.save();
    ctx.font = this.compact ? 'bold 10px system-ui, sans-serif' : 'bold 13px system-ui, sans-serif';
    ctx.fillStyle = this.colour;
    ctx.globalAlpha = this.compact ? 0.7 : 1;
    ctx.textBaseline = 'top';
    const text = this.unit && !this.compact ? `${this.label}  ${this.unit}` : this.label;
    ctx.fillText(text, this.compact ? 3 : 6, this.compact ? 2 : 3);
    ctx.restore();
  }
}
