// <vigil-header [bay="bay1"] [heading="Central station"] [nav="/station.html" nav-label="Station"]>: page header.
//
// Bay label (or title), patient placeholder, REPLAY badge when the stream is a replay, connection state and
// the server-clock time. Hooks: .clock (server time "HH:MM:SS"), .conn[data-connection], .replay (hidden
// unless replay).

import { context } from '../lib/context.js';
import { formatClock, h, setAttr, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

class VigilHeader extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      const left = h('div', 'hdr-left');
      this._home = h('a', 'home', 'Vigil');
      this._home.href = '/';
      this._title = h('span', 'bay-label');
      this._patient = h('span', 'patient');
      left.append(this._home, this._title, this._patient);
      const right = h('div', 'hdr-right');
      this._replay = h('span', 'replay', 'REPLAY');
      this._replay.hidden = true;
      this._conn = h('span', 'conn');
      this._clock = h('span', 'clock', '--:--:--');
      this._clock.title = 'server time';
      right.append(this._replay, this._conn, this._clock);
      const extra = this.getAttribute('nav');
      if (extra) {
        const a = h('a', 'nav', this.getAttribute('nav-label') ?? extra);
        a.href = extra;
        right.prepend(a);
      }
      this.append(left, right);
    }
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    this._off?.();
  }

  render(now, store) {
    const bayId = this.getAttribute('bay');
    if (bayId) {
      const bay = store.bays.get(bayId);
      setText(this._title, bay?.label ?? bayId);
      setText(this._patient, 'Patient: — (not linked)');
    } else {
      setText(this._title, this.getAttribute('heading') ?? '');
      setText(this._patient, '');
    }
    const { socket, clock } = context();
    const open = store.connected;
    setText(this._conn, open ? '● LIVE' : '○ NO LINK');
    setAttr(this._conn, 'data-connection', open ? 'open' : 'closed');
    this._replay.hidden = !store.replay;
    setText(this._clock, clock?.known ? formatClock(now) : '--:--:--');
    setAttr(this._clock, 'title', socket ? `server time (clock offset ${clock.offset.toFixed(2)} s)` : 'server time');
  }
}

customElements.define('vigil-header', VigilHeader);
