// Sweeping waveform renderer for one channel on one <canvas>.
//
// Every frame the whole visible window is redrawn from the channel's ring buffer, each sample placed by
// its own time: x = ((t mod sweep) / sweep) · width. The display runs ``delay`` seconds behind the server
// clock so that 0.2 s chunks are in the buffer before the sweep reaches their time; the trace ends at the
// cursor, and an erase bar (a blank band) runs just ahead of it, over the oldest part of the previous sweep.
// Missing samples (a time gap) are left blank; a flat line is only ever drawn from real samples.

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
    this._drawnUntil = -Infinity; // time of the newest sample counted in samplesDrawn
    this._lo = null; // auto-range state
    this._hi = null;
    this._cssW = 0;
    this._cssH = 0;
    this._dpr = 0;
  }

  _fit() {
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    if (w !== this._cssW || h !== this._cssH || dpr !== this._dpr) {
      this._cssW = w;
      this._cssH = h;
      this._dpr = dpr;
      this.canvas.width = Math.max(1, Math.round(w * dpr));
      this.canvas.height = Math.max(1, Math.round(h * dpr));
    }
    this.ctx.setTransform(this._dpr, 0, 0, this._dpr, 0, 0);
    return w > 0 && h > 0;
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
    const ctx = this.ctx;
    const W = this._cssW;
    const H = this._cssH;
    ctx.fillStyle = BG;
    ctx.fillRect(0, 0, W, H);

    const sweep = this.sweepS;
    const D = now - delay; // display time at the cursor
    const gapS = sweep * ERASE_FRACTION;
    const from = D - sweep + gapS;
    const ring = wave?.ring;
    const padTop = this.compact ? 3 : 18;
    const padBottom = this.compact ? 3 : 6;
    const plotH = Math.max(1, H - padTop - padBottom);

    let k0 = 0;
    let k1 = 0;
    if (ring && ring.length) {
      k0 = ring.indexAfter(from);
      k1 = ring.indexAfter(D);
    }
    const [lo, hi] = this._yRange(ring, k0, k1);
    this._drawScale(ctx, W, H, padTop, plotH, lo, hi);

    if (k1 > k0) {
      const fs = wave.fs || 1;
      const maxGap = Math.max(2.5 / fs, 0.04);
      const xOf = (t) => ((((t / sweep) % 1) + 1) % 1) * W;
      const yOf = (v) => padTop + (1 - (v - lo) / (hi - lo)) * plotH;
      ctx.save();
      ctx.beginPath();
      ctx.rect(0, 0, W, H);
      ctx.clip();
      // Without live data the remaining trace is drawn grey and faint: it is history, not the patient now.
      ctx.strokeStyle = state === 'live' ? this.colour : STALE_TRACE_COLOUR;
      ctx.lineWidth = this.compact ? 1.25 : 2;
      ctx.lineJoin = 'round';
      ctx.lineCap = 'round';
      ctx.beginPath();
      let prevT = -Infinity;
      let prevX = -Infinity;
      let newSamples = 0;
      for (let k = k0; k < k1; k += 1) {
        const t = ring.timeAt(k);
        const x = xOf(t);
        const y = yOf(ring.valueAt(k));
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
      ctx.restore();
      if (newSamples) {
        this.samplesDrawn += newSamples;
        this._drawnUntil = ring.timeAt(k1 - 1);
      }
    }

    if (state === 'nodata') this._drawNoData(ctx, W, H);
    this._drawLabel(ctx);
  }

  _yRange(ring, k0, k1) {
    const r = this.range;
    if (r.mode === 'fixed') {
      let max = r.max;
      if (r.expand && ring && k1 > k0) {
        let vmax = -Infinity;
        for (let k = k0; k < k1; k += 1) vmax = Math.max(vmax, ring.valueAt(k));
        if (vmax > max) max = Math.ceil(vmax / 25) * 25;
      }
      return [r.min, max];
    }
    // Auto gain: expand at once to fit, shrink slowly (so one beat does not rescale the trace).
    if (ring && k1 > k0) {
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
      if (this._lo === null) { this._lo = tlo; this._hi = thi; }
      this._lo = tlo < this._lo ? tlo : this._lo + (tlo - this._lo) * 0.02;
      this._hi = thi > this._hi ? thi : this._hi + (thi - this._hi) * 0.02;
    }
    if (this._lo === null || !(this._hi > this._lo)) return [-1, 1];
    return [this._lo, this._hi];
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
