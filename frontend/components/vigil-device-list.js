// <vigil-device-list bay="bay1">: the bay's devices with their connection state and last data age.
// Hook: each row is .device[data-device][data-device-state].

import { formatAge, formatClock, h, setAttr, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

class VigilDeviceList extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      this._title = h('div', 'section-title', 'Devices');
      this._list = h('div', 'device-rows');
      this.append(this._title, this._list);
      this._rows = new Map();
    }
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    this._off?.();
  }

  render(now, store) {
    const bay = store.bays.get(this.getAttribute('bay') ?? '');
    const devices = bay ? [...bay.devices.values()] : [];
    // The empty-list text depends on the link too ("unknown: no link" must not outlive the outage).
    const ids = devices.length ? devices.map((d) => d.device_id).join('\u0000') : `none:${store.connected}`;
    if (ids !== this._ids) {
      this._ids = ids;
      this._rows = new Map();
      this._list.replaceChildren(...devices.map((d) => {
        const row = h('div', 'device');
        row.dataset.device = d.device_id;
        const name = h('span', 'dev-name', d.device_id);
        const state = h('span', 'dev-state');
        const age = h('span', 'dev-age');
        const detail = h('span', 'dev-detail');
        row.append(name, state, age, detail);
        this._rows.set(d.device_id, { row, state, age, detail });
        return row;
      }));
      if (!devices.length) this._list.append(h('div', 'dev-none', store.connected ? 'no devices bound to this bay' : 'unknown: no link'));
    }
    for (const d of devices) {
      const r = this._rows.get(d.device_id);
      if (!r) continue;
      const heard = bay.lastHeard(d.device_id);
      setAttr(r.row, 'data-device-state', store.connected ? d.state : 'unknown');
      setText(r.state, store.connected ? d.state : `${d.state}?`);
      setText(r.age, heard === null ? 'never heard' : `last data ${formatAge(now - heard)}${now - heard < 2 ? '' : ' ago'}`);
      setText(r.detail, `since ${formatClock(d.since)}${d.detail ? `: ${d.detail}` : ''}`);
    }
  }
}

customElements.define('vigil-device-list', VigilDeviceList);
