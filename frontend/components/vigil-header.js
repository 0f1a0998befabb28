// <vigil-header [bay="bay1"] [heading="Central station"] [nav="/station.html" nav-label="Station"]>: page header.
//
// Bay label (or title), the patient of the bay's open session, REPLAY badge when the stream is a replay,
// connection state and the server-clock time in the clinic's zone. The patient comes from the page's
// <vigil-session-panel> (its `vigil-session` events): name, identifier and birth date (two identifiers, as
// any chart); without an open session the header says so plainly ("NO SESSION — patient not linked"), and
// until the first answer "checking session…". Hooks: .patient[data-linked="true|false"] (absent while
// unknown), .clock (server time "HH:MM:SS"), .tz (zone abbreviation), .conn[data-connection], .replay
// (hidden unless replay).

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
    this._onSession = (ev) => {
      if (ev.detail?.bay !== this.getAttribute('bay')) return;
      this._session = ev.detail;
      this._renderPatient();
    };
    document.addEventListener('vigil-session', this._onSession);
    this._renderPatient();
  }

  disconnectedCallback() {
    this._off?.();
    document.removeEventListener('vigil-session', this._onSession);
  }

  _renderPatient() {
    if (!this.getAttribute('bay')) {
      setText(this._patient, '');
      setAttr(this._patient, 'data-linked', null);
      return;
    }
    const s = this._session;
    if (!s) {
      setText(this._patient, 'Patient: checking session…');
      setAttr(this._patient, 'data-linked', null);
      return;
    }
    if (!s.session) {
      setText(this._patient, 'NO SESSION — patient not linked');
      setAttr(this._patient, 'data-linked', 'false');
      setAttr(this._patient, 'title', 'No infusion session is open in this bay: the values are not charted to a patient.');
      return;
    }
    const p = s.patient;
    const who = p ? [p.name, p.identifier, p.birth_date ? `born ${p.birth_date}` : ''].filter(Boolean).join(' · ') : s.session.patient_id;
    setText(this._patient, `Patient: ${who}`);
    setAttr(this._patient, 'data-linked', 'true');
    setAttr(this._patient, 'title', `Session ${s.session.id}`);
  }

  render(now, store) {
    const bayId = this.getAttribute('bay');
    if (bayId) {
      const bay = store.bays.get(bayId);
      setText(this._title, bay?.label ?? bayId);
      if (!this._session) this._renderPatient();
    } else {
      setText(this._title, this.getAttribute('heading') ?? '');
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
