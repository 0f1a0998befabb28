// <vigil-replay-band recorded-start="UNIX_S" [patient="..."]>: the permanent, high-contrast statement that
// this screen is a replay — "REPLAY — recorded <date time>, not a live patient" — with an icon (never colour
// alone), the replay position as recorded clock time, and the fact that alarm sounds are off.
//
// It is shown unconditionally: the review page can never show a live patient, so nothing the server says
// can hide it. Hooks: .band-title (the sentence), .band-position[data-t], [data-state].

import { context } from '../lib/context.js';
import { formatClock, formatDateTime, h, setAttr, setText, zoneAbbreviation } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

const SVG = 'http://www.w3.org/2000/svg';

/** A "history" icon (clock with a back arrow), drawn with DOM calls. */
function icon() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('band-icon');
  const path = (d) => {
    const p = document.createElementNS(SVG, 'path');
    p.setAttribute('d', d);
    p.setAttribute('fill', 'none');
    p.setAttribute('stroke', 'currentColor');
    p.setAttribute('stroke-width', '2.4');
    p.setAttribute('stroke-linecap', 'round');
    p.setAttribute('stroke-linejoin', 'round');
    svg.append(p);
  };
  path('M3.5 12a8.5 8.5 0 1 0 2.6-6.1');
  path('M3 3.5v4.6h4.6');
  path('M12 7.5V12l3.2 2');
  return svg;
}

class VigilReplayBand extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      this.setAttribute('role', 'status');
      this.setAttribute('aria-label', 'replay of a recorded session, not a live patient');
      this._title = h('span', 'band-title', 'REPLAY — recorded session, not a live patient');
      const right = h('span', 'band-right');
      this._position = h('span', 'band-position');
      this._audio = h('span', 'band-audio', 'NO ALARM SOUND: alarms shown on screen only');
      right.append(this._position, this._audio);
      this.append(icon(), this._title, right);
    }
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    this._off?.();
  }

  render(now, store) {
    const start = Number(this.getAttribute('recorded-start'));
    const when = Number.isFinite(start) && start > 0 ? formatDateTime(start, false) : 'earlier';
    setText(this._title, `REPLAY — recorded ${when}, not a live patient`);
    const { clock } = context();
    const state = store.replayState?.state ?? 'paused';
    setAttr(this, 'data-state', state);
    if (clock?.known && this.hasAttribute('recorded-start')) {
      setText(this._position, `recorded time ${formatClock(now)} ${zoneAbbreviation(now)}`);
      setAttr(this._position, 'data-t', now.toFixed(3));
    } else {
      setText(this._position, '');
    }
  }
}

customElements.define('vigil-replay-band', VigilReplayBand);
