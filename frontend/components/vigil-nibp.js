// <vigil-nibp bay="bay1">: non-invasive blood pressure, "sys/dia (mean)", time of measurement and its age.
//
// Testability hooks: data-param="nibp", data-state ("live" | "stale" | "invalid" | "empty"), .value
// ("120/80"), .age ("13:45 · 3 min ago", or "no data for 12 s" when stale). NIBP is episodic: it is never
// stale by age alone (the age is always shown); it is stale when its device is stale/offline or the link is down.

import { alarmByParam, nibpView } from '../lib/derive.js';
import { h, setAttr, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

class VigilNibp extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      const head = h('div', 'num-head');
      head.append(h('span', 'label', 'NIBP'), h('span', 'unit', 'mmHg'));
      this._value = h('div', 'value', '---/---');
      this._mean = h('span', 'mean');
      const row = h('div', 'nibp-row');
      row.append(this._value, this._mean);
      this._age = h('div', 'age');
      this.append(head, row, this._age);
    }
    this.classList.add('numeric', 'nibp', 'c-nibp');
    setAttr(this, 'data-param', 'nibp');
    setAttr(this, 'data-state', 'empty');
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    this._off?.();
  }

  render(now, store) {
    const bay = store.bays.get(this.getAttribute('bay') ?? '');
    const v = nibpView(store, bay, now);
    setText(this._value, v.value);
    setText(this._mean, v.mean);
    const age = v.state === 'stale' || v.state === 'empty' ? v.age : `${v.time} · ${v.age}`;
    setText(this._age, age);
    setAttr(this, 'data-state', v.state);
    setAttr(this, 'data-alarm', store.connected && v.state !== 'stale' ? alarmByParam(bay).get('nibp') : null);
    setAttr(this, 'title', v.time ? `NIBP measured at ${v.time}` : 'NIBP: no measurement');
  }
}

customElements.define('vigil-nibp', VigilNibp);
