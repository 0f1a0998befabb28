// <vigil-waveform bay="bay1" channel="ecg_ii" [sweep="6"] [compact]>
//
// One sweeping waveform channel on a canvas. Testability hooks, kept current while it runs:
//   data-channel        the channel key (ecg_ii, pleth, co2, ...)
//   data-state          "live" | "nodata"
//   data-samples-drawn  distinct samples drawn on the canvas so far (monotonic)
// The channel attribute may name several channels ("pleth ecg_ii"): the first one with live data is shown
// (the station strip uses this).

import { context } from '../lib/context.js';
import { waveState } from '../lib/derive.js';
import { onFrame, offFrame } from '../lib/frame-loop.js';
import { setAttr } from '../lib/format.js';
import { WaveformRenderer } from '../lib/waveform-renderer.js';

class VigilWaveform extends HTMLElement {
  constructor() {
    super();
    this._renderers = new Map();
    this._tick = () => this._frame();
    this._lastAttrAt = 0;
  }

  connectedCallback() {
    if (!this._canvas) {
      this._canvas = document.createElement('canvas');
      this._canvas.setAttribute('aria-hidden', 'true');
      this.append(this._canvas);
    }
    this.setAttribute('role', 'img');
    this._channels = (this.getAttribute('channel') ?? '').split(/\s+/).filter(Boolean);
    setAttr(this, 'data-channel', this._channels[0] ?? '');
    setAttr(this, 'data-state', 'nodata');
    setAttr(this, 'data-samples-drawn', '0');
    this.setAttribute('aria-label', `${this._channels[0] ?? 'waveform'}: no data`);
    onFrame(this._tick);
  }

  disconnectedCallback() {
    offFrame(this._tick);
  }

  _renderer(channel) {
    let r = this._renderers.get(channel);
    if (!r) {
      const sweep = Number(this.getAttribute('sweep'));
      r = new WaveformRenderer(this._canvas, {
        channel,
        sweepS: Number.isFinite(sweep) && sweep > 0 ? sweep : undefined,
        compact: this.hasAttribute('compact'),
      });
      this._renderers.set(channel, r);
    }
    return r;
  }

  _frame() {
    const { store, clock } = context();
    if (!store || !clock) return;
    const bay = store.bays.get(this.getAttribute('bay') ?? '');
    const now = clock.now();
    // Pick the first listed channel that is live, else the first that has any samples, else the first.
    let channel = this._channels[0];
    let state = 'nodata';
    for (const c of this._channels) {
      if (waveState(store, bay, c, now) === 'live') { channel = c; state = 'live'; break; }
    }
    if (state === 'nodata') channel = this._channels.find((c) => bay?.waves.get(c)?.ring?.length) ?? channel;
    if (!channel) return;
    const delay = bay ? bay.displayDelay(now) : 0.5;
    const r = this._renderer(channel);
    if (channel !== this._shown) {
      r.invalidate(); // another channel drew on this canvas last
      this._shown = channel;
    }
    r.draw(bay?.waves.get(channel), now, delay, state);

    let drawn = 0;
    for (const x of this._renderers.values()) drawn += x.samplesDrawn;
    setAttr(this, 'data-channel', channel);
    setAttr(this, 'data-state', state);
    // The counter moves every frame; write it at most 4 times a second (an attribute write invalidates style:
    // 16 station strips at 10 Hz restyled the page every frame).
    const t = performance.now();
    if (t - this._lastAttrAt > 250 || state !== this._lastState) {
      this._lastAttrAt = t;
      this._lastState = state;
      setAttr(this, 'data-samples-drawn', String(drawn));
      setAttr(this, 'aria-label', `${r.label}: ${state === 'live' ? 'live' : 'no data'}`);
    }
  }
}

customElements.define('vigil-waveform', VigilWaveform);
