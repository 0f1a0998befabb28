// <vigil-sim-control bay="bay1">: a small training control in the bedside footer.
//
// For simulated devices only: POST /api/devices/{id}/simulation {"fault": "silent"|"none"} so staff can
// see what a silent monitor looks like. The server refuses it for real devices; the reply is shown.

import { h, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

class VigilSimControl extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      const label = h('span', 'sim-label', 'Training (simulated devices):');
      this._select = h('select', 'sim-device');
      this._select.setAttribute('aria-label', 'device');
      this._silence = h('button', 'sim-silence', 'Silence device');
      this._silence.type = 'button';
      this._restore = h('button', 'sim-restore', 'Restore');
      this._restore.type = 'button';
      this._status = h('span', 'sim-status');
      this._silence.addEventListener('click', () => this._post('silent'));
      this._restore.addEventListener('click', () => this._post('none'));
      this.append(label, this._select, this._silence, this._restore, this._status);
      this._devices = '';
      this._simulated = null; // Set of simulated device ids, from /api/monitors
      this.hidden = true;
      this._loadSimulated();
    }
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    this._off?.();
  }

  async _loadSimulated() {
    try {
      const res = await fetch('/api/monitors', { headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const monitors = await res.json();
      this._simulated = new Set(
        monitors.filter((m) => m.type === 'SimulatedAdapter').flatMap((m) => m.devices),
      );
      this._devices = null; // re-render the list with the filter
    } catch (err) {
      console.warn('vigil: could not list simulated devices', err);
    }
  }

  render(now, store) {
    const bay = store.bays.get(this.getAttribute('bay') ?? '');
    const sim = this._simulated;
    const ids = bay && sim ? [...bay.devices.keys()].filter((id) => sim.has(id)) : [];
    this.hidden = ids.length === 0; // only simulated devices can be silenced
    const sig = ids.join('\u0000');
    if (sig !== this._devices) {
      this._devices = sig;
      const keep = this._select.value;
      this._select.replaceChildren(...ids.map((id) => {
        const o = h('option', '', id);
        o.value = id;
        return o;
      }));
      if (ids.includes(keep)) this._select.value = keep;
    }
    const disabled = ids.length === 0 || !store.connected;
    this._silence.disabled = disabled;
    this._restore.disabled = disabled;
  }

  async _post(fault) {
    const id = this._select.value;
    if (!id) return;
    setText(this._status, '…');
    try {
      const res = await fetch(`/api/devices/${encodeURIComponent(id)}/simulation`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ fault }),
      });
      if (!res.ok) {
        let why = `HTTP ${res.status}`;
        try { const j = await res.json(); if (j?.detail) why += `: ${typeof j.detail === 'string' ? j.detail : JSON.stringify(j.detail)}`; } catch { /* not JSON */ }
        throw new Error(why);
      }
      setText(this._status, fault === 'silent' ? `${id} silenced (training)` : `${id} restored`);
    } catch (err) {
      console.warn('vigil: simulation control failed', err);
      setText(this._status, `refused: ${err.message}`);
    }
  }
}

customElements.define('vigil-sim-control', VigilSimControl);
