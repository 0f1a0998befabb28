// <vigil-numeric bay="bay1" param="hr" [size="large|medium|small"]>
//
// One numeric: label, unit, big value, age. Testability hooks:
//   data-param   the parameter key
//   data-state   "live" | "stale" | "invalid" | "empty"  (rules in lib/derive.js)
//   .value       the value text ("72", "97?", "-?-", "---")
//   .age         the age text ("now", "4 s", "no data for 12 s")
// data-alarm="high|medium|low" is set while a physiological device alarm about this parameter is active.

import { alarmByParam, numericView, PRIORITY_MARK } from '../lib/derive.js';
import { h, setAttr, setText } from '../lib/format.js';
import { param, PARAM_COLOUR } from '../lib/params.js';
import { onRender } from '../lib/ticker.js';

class VigilNumeric extends HTMLElement {
  connectedCallback() {
    const key = this.getAttribute('param') ?? '';
    if (!this._built) {
      this._built = true;
      this._label = h('span', 'label');
      this._unit = h('span', 'unit');
      const head = h('div', 'num-head');
      this._mark = h('span', 'alarm-mark'); // "!!!" / "!!" / "!" while in alarm: colour is never the only cue
      head.append(this._label, this._unit, this._mark);
      this._value = h('div', 'value', '---');
      this._age = h('div', 'age');
      this.append(head, this._value, this._age);
    }
    this.classList.add('numeric', `c-${PARAM_COLOUR[key] ?? 'other'}`);
    setAttr(this, 'data-param', key);
    setAttr(this, 'data-state', 'empty');
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    this._off?.();
  }

  render(now, store) {
    const key = this.getAttribute('param') ?? '';
    const p = param(key);
    const bay = store.bays.get(this.getAttribute('bay') ?? '');
    const v = numericView(store, bay, key, now);
    setText(this._label, p.label);
    setText(this._unit, p.unit_display ?? p.ucum ?? '');
    setText(this._value, v.value);
    setText(this._age, v.age);
    setAttr(this, 'data-state', v.state);
    setAttr(this, 'data-quality', v.state === 'live' ? v.reading?.quality : null);
    const alarm = store.connected && v.state !== 'stale' ? alarmByParam(bay).get(key) : null;
    setAttr(this, 'data-alarm', alarm);
    setText(this._mark, alarm ? PRIORITY_MARK[alarm] ?? '' : '');
    setAttr(this, 'title', v.reading ? `${p.label}: ${v.state}, from ${v.reading.device_id}` : `${p.label}: ${v.state}`);
  }
}

customElements.define('vigil-numeric', VigilNumeric);
