// <vigil-alarm-controls bay="bay1">: acknowledge and audio pause for Vigil's own alarms, by click or key.
//
// Keys: A acknowledges every alarm of the bay, P pauses the alarm audio (the profile's default time),
// R resumes it. Both actions are recorded by the server with the user who did them. The paused audio
// shows its countdown (IEC 60601-1-8: the pause must be visible and time-limited).
//
// Hooks: button.alarm-ack, button.alarm-pause, .audio-paused (countdown), [data-unacked] (count).

import { unacknowledged } from '../lib/derive.js';
import { formatElapsed, h, setAttr, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.json();
}

class VigilAlarmControls extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      this._ack = h('button', 'alarm-ack', 'Acknowledge (A)');
      this._ack.type = 'button';
      this._pause = h('button', 'alarm-pause', 'Audio pause (P)');
      this._pause.type = 'button';
      this._paused = h('span', 'audio-paused');
      this._status = h('span', 'alarm-action-status');
      // Discoverable shortcuts: visible "(A)" in the label, a tooltip, and aria-keyshortcuts for assistive tech.
      this._ack.setAttribute('aria-keyshortcuts', 'A');
      this._ack.title = 'Acknowledge every alarm of this bay (key A); silences their sound, they stay listed while active';
      this._pause.setAttribute('aria-keyshortcuts', 'P R');
      this._pause.title = 'Pause the alarm sound for the profile\'s time (key P); press P again or R to turn it back on';
      this._ack.addEventListener('click', () => this.acknowledge());
      this._pause.addEventListener('click', () => this.togglePause());
      this.append(this._ack, this._pause, this._paused, this._status);
      this._onKey = (ev) => {
        // Plain keys only: Ctrl+A (select all), Ctrl+P (print), auto-repeat and typing must not act.
        if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
        const t = ev.target;
        if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement || t?.isContentEditable) return;
        if (ev.key === 'a' || ev.key === 'A') this.acknowledge();
        else if (ev.key === 'p' || ev.key === 'P') this.togglePause();
        else if (ev.key === 'r' || ev.key === 'R') this.resume();
      };
    }
    document.addEventListener('keydown', this._onKey);
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    document.removeEventListener('keydown', this._onKey);
    this._off?.();
  }

  get bayPath() {
    return `/api/bays/${encodeURIComponent(this.getAttribute('bay') ?? '')}`;
  }

  async acknowledge() {
    await this._do(() => post(`${this.bayPath}/alarms/acknowledge`, { rule_id: 'all' }), 'acknowledged');
  }

  async togglePause() {
    if (this._pausedNow) await this.resume();
    else await this._do(() => post(`${this.bayPath}/alarms/audio-pause`, {}), 'audio paused');
  }

  async resume() {
    await this._do(() => post(`${this.bayPath}/alarms/audio-resume`, {}), 'audio on');
  }

  async _do(action, done) {
    setText(this._status, '…');
    try {
      await action();
      setText(this._status, done);
    } catch (err) {
      console.error('vigil: alarm action failed', err);
      setText(this._status, `failed: ${err.message}`);
    }
  }

  render(now, store) {
    const bay = store.bays.get(this.getAttribute('bay') ?? '');
    const unacked = unacknowledged(bay).length;
    setAttr(this, 'data-unacked', String(unacked));
    this._ack.disabled = !store.connected || unacked === 0;
    this._pause.disabled = !store.connected;
    const until = bay?.audioPausedUntil ?? null;
    this._pausedNow = until !== null && until > now;
    setText(this._ack, unacked ? `Acknowledge (A) · ${unacked} unacknowledged` : 'Acknowledge (A)');
    setText(this._pause, this._pausedNow ? 'Audio on (P)' : 'Audio pause (P)');
    setText(this._paused, this._pausedNow ? `AUDIO PAUSED ${formatElapsed(until - now)}` : '');
    setAttr(this, 'data-audio-paused', this._pausedNow ? 'true' : null);
  }
}

customElements.define('vigil-alarm-controls', VigilAlarmControls);
