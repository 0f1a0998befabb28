// <vigil-replay-controls>: the replay transport — first / previous / next alarm, play-pause, speed, and
// the position as recorded clock time.
//
// It only asks: every button dispatches `vigil-replay-control` {detail: {action, t?, speed?}} (bubbling)
// and the page talks to the server; what it shows comes from the page clock (the replay position) and the
// store's last `replay` message, so it never claims a state the server has not confirmed.
//
// Set `.alarms` to the session's alarm raises ([{t, priority, text}], time order) for alarm navigation and
// `.range` to {start, end} (Unix s).
//
// Hooks: [data-state] playing|paused|ended, [data-speed], button[data-action=first-alarm|prev-alarm|
// toggle|next-alarm], button[data-speed-choice="10"][aria-pressed], .position[data-t] (recorded clock
// time), .elapsed, .state-text.

import { context } from '../lib/context.js';
import { formatClock, formatElapsed, h, setAttr, setText, zoneAbbreviation } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

export const SPEEDS = Object.freeze([1, 2, 5, 10, 30, 60]);
const NEAR_S = 3; // "previous alarm" skips the one we are sitting on (media-player habit)

/** The alarm to jump to: 'first', 'next' or 'prev' relative to ``now``, or null. */
export function alarmTarget(alarms, now, which) {
  if (!alarms.length) return null;
  if (which === 'first') return alarms[0];
  if (which === 'next') return alarms.find((a) => a.t > now + 0.5) ?? null;
  const before = alarms.filter((a) => a.t < now - NEAR_S);
  return before.length ? before[before.length - 1] : null;
}

function button(cls, text, action, title, keys) {
  const b = h('button', cls, text);
  b.type = 'button';
  b.dataset.action = action;
  b.title = title;
  if (keys) b.setAttribute('aria-keyshortcuts', keys);
  return b;
}

class VigilReplayControls extends HTMLElement {
  constructor() {
    super();
    this.alarms = [];
    this.range = null;
  }

  connectedCallback() {
    if (!this._built) {
      this._built = true;
      const nav = h('div', 'rc-group rc-nav');
      this._first = button('rc-btn', '⇤ First alarm', 'first-alarm', 'Jump to the first alarm of the session');
      this._prev = button('rc-btn', '◀ Previous alarm', 'prev-alarm', 'Jump to the previous alarm');
      this._next = button('rc-btn', 'Next alarm ▶', 'next-alarm', 'Jump to the next alarm');
      nav.append(this._first, this._prev, this._next);

      this._toggle = button('rc-btn rc-play', '▶ Play', 'toggle', 'Play / pause (Space)', 'Space');

      const speeds = h('div', 'rc-group rc-speeds');
      speeds.setAttribute('role', 'group');
      speeds.setAttribute('aria-label', 'replay speed');
      speeds.append(h('span', 'rc-label', 'Speed'));
      this._speedButtons = SPEEDS.map((s) => {
        const b = button('rc-speed', `${s}×`, 'speed', `Play at ${s}× ([ and ] change speed)`);
        b.dataset.speedChoice = String(s);
        b.setAttribute('aria-pressed', 'false');
        speeds.append(b);
        return b;
      });

      const where = h('div', 'rc-where');
      this._state = h('span', 'state-text', 'PAUSED');
      this._position = h('span', 'position', '--:--:--');
      this._zone = h('span', 'rc-zone');
      this._elapsed = h('span', 'elapsed');
      where.append(this._state, this._position, this._zone, this._elapsed);

      this.append(this._toggle, speeds, nav, where);
      this.addEventListener('click', (ev) => this._onClick(ev));
    }
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    this._off?.();
  }

  _emit(detail) {
    this.dispatchEvent(new CustomEvent('vigil-replay-control', { detail, bubbles: true }));
  }

  _onClick(ev) {
    const b = ev.target.closest('button[data-action]');
    if (!b || b.disabled) return;
    const { clock } = context();
    const now = clock?.now() ?? NaN;
    const action = b.dataset.action;
    if (action === 'toggle') {
      this._emit({ action: this.dataset.state === 'playing' ? 'pause' : 'play' });
    } else if (action === 'speed') {
      this._emit({ action: 'speed', speed: Number(b.dataset.speedChoice) });
    } else {
      const a = alarmTarget(this.alarms, now, action.replace('-alarm', ''));
      if (a) this._emit({ action: 'seek', t: a.t, alarm: a });
    }
  }

  render(now, store) {
    const rs = store.replayState;
    const { clock } = context();
    const state = rs?.state ?? 'paused';
    const speed = rs?.speed ?? clock?.speed ?? 1;
    setAttr(this, 'data-state', state);
    setAttr(this, 'data-speed', String(speed));
    setText(this._toggle, state === 'playing' ? '❚❚ Pause' : '▶ Play');
    setAttr(this._toggle, 'data-playing', state === 'playing' ? '' : null);
    for (const b of this._speedButtons) setAttr(b, 'aria-pressed', Number(b.dataset.speedChoice) === speed ? 'true' : 'false');
    const word = { playing: `PLAYING ${speed}×`, paused: 'PAUSED', ended: 'END OF RECORDING' }[state] ?? state.toUpperCase();
    setText(this._state, word);
    const known = Boolean(clock?.known);
    setText(this._position, known ? formatClock(now) : '--:--:--');
    setText(this._zone, known ? zoneAbbreviation(now) : '');
    setAttr(this._position, 'data-t', known ? now.toFixed(3) : null);
    const start = this.range?.start ?? rs?.start;
    const end = this.range?.end ?? rs?.end;
    setText(this._elapsed, known && Number.isFinite(start) && Number.isFinite(end)
      ? `${formatElapsed(now - start)} / ${formatElapsed(end - start)}`
      : '');
    const has = this.alarms.length > 0;
    this._first.disabled = !has;
    this._prev.disabled = !has || alarmTarget(this.alarms, now, 'prev') === null;
    this._next.disabled = !has || alarmTarget(this.alarms, now, 'next') === null;
    this._toggle.disabled = !store.connected;
  }
}

customElements.define('vigil-replay-controls', VigilReplayControls);
