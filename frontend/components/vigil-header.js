// <vigil-header [bay="bay1"] [heading="Central station"] [nav="/station.html" nav-label="Station"]>: page header.
//
// Bay label (or title), patient placeholder, REPLAY badge when the stream is a replay, connection state and
// the server-clock time in the clinic's zone. Hooks: .clock (server time "HH:MM:SS"), .tz (zone abbreviation),
// .conn[data-connection], .replay (hidden unless replay).

import { context } from '../lib/context.js';
import { clinicTimeZone, formatClock, h, setAttr, setText, zoneAbbreviation } from '../lib/format.js';
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
      this._tz = h('span', 'tz'); // the clinic's zone beside the clock (times are never in an unnamed zone)
      right.append(this._replay, this._conn, this._clock, this._tz);
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
    // A replay stream is never called LIVE.
    setText(this._conn, open ? (store.replay ? '▶ REPLAY' : '● LIVE') : '○ NO LINK');
    setAttr(this._conn, 'data-connection', open ? 'open' : 'closed');
    this._replay.hidden = !store.replay;
    setText(this._clock, clock?.known ? formatClock(now) : '--:--:--');
    setText(this._tz, zoneAbbreviation(now));
    setAttr(this._tz, 'title', `times in ${clinicTimeZone()}`);
    setAttr(this._clock, 'title', socket ? `server time (clock offset ${clock.offset.toFixed(2)} s)` : 'server time');
  }
}

customElements.define('vigil-header', VigilHeader);
