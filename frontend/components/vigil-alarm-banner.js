// <vigil-alarm-banner bay="bay1">: the alarm bar across the top of the bedside page.
//
// Left: physiological (and advisory) alarms reported by the devices, highest priority first.
// Right, apart: technical alarms: the devices' own INOPs and our "NO DATA FROM MONITOR <id> 00:42".
// IEC 60601-1-8 look: HIGH red flashing ~2 Hz "!!!", MEDIUM yellow flashing ~0.6 Hz "!!", LOW cyan steady "!".
// With the link down every entry is greyed and marked "last known" (it may have changed since).
//
// Hooks: each entry is .alarm[data-priority][data-kind][data-code]; device banners are
// .device-banner[data-device][data-device-state].

import { deviceBanners, PRIORITY_MARK, sortedAlarms } from '../lib/derive.js';
import { h, setAttr, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

const MAX_PHYSIO = 3;
const MAX_TECH = 3;

function alarmEntry(a, stale) {
  const el = h('div', 'alarm');
  el.dataset.priority = a.priority;
  el.dataset.kind = a.alarm_kind;
  el.dataset.code = a.code;
  if (stale) el.classList.add('stale');
  const mark = PRIORITY_MARK[a.priority] ?? '';
  if (mark) el.append(h('span', 'mark', mark));
  el.append(h('span', 'text', a.text || a.code));
  let src = a.device_id;
  if (a.source === 'rule') {
    el.dataset.rule = a.code;
    el.classList.add('rule');
    const notes = [];
    if (a.latched || a.condition_active === false) notes.push('latched');
    if (a.acknowledged_by) notes.push(`ack ${a.acknowledged_by}`);
    src = notes.length ? notes.join(' · ') : 'Vigil';
    if (a.acknowledged_at) el.classList.add('acked');
  }
  el.append(h('span', 'src', stale ? `last known · ${src}` : src));
  return el;
}

class VigilAlarmBanner extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      this._physio = h('div', 'alarm-zone physio');
      this._physio.setAttribute('aria-live', 'assertive');
      this._tech = h('div', 'alarm-zone tech');
      this._tech.setAttribute('aria-live', 'polite');
      this.append(this._physio, this._tech);
      this._sig = '';
    }
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    this._off?.();
  }

  render(now, store) {
    const bay = store.bays.get(this.getAttribute('bay') ?? '');
    const stale = !store.connected;
    const alarms = sortedAlarms(bay);
    const physio = alarms.filter((a) => a.alarm_kind !== 'technical');
    const tech = alarms.filter((a) => a.alarm_kind === 'technical');
    const banners = deviceBanners(bay, now);

    // Rebuild the entries only when the set changed (keeps CSS flashing in phase); update timers in place.
    const sig = JSON.stringify([stale, physio.map((a) => [a.device_id, a.code, a.priority, a.text, a.acknowledged_by, a.latched]),
      tech.map((a) => [a.device_id, a.code, a.priority, a.text]), banners.map((b) => [b.device.device_id, b.kind])]);
    if (sig !== this._sig) {
      this._sig = sig;
      this._physio.replaceChildren(...physio.slice(0, MAX_PHYSIO).map((a) => alarmEntry(a, stale)));
      if (physio.length > MAX_PHYSIO) this._physio.append(h('div', 'alarm more', `+${physio.length - MAX_PHYSIO} more`));
      if (!physio.length) this._physio.append(h('div', 'alarm-none', stale ? 'alarms unknown: no link' : 'no physiological alarm reported by the monitor'));
      const bannerEls = banners.map((b) => {
        const el = h('div', 'alarm device-banner');
        el.dataset.priority = b.kind === 'connecting' ? 'info' : 'medium';
        el.dataset.kind = 'technical';
        el.dataset.device = b.device.device_id;
        el.dataset.deviceState = b.kind;
        if (b.kind !== 'connecting') el.append(h('span', 'mark', PRIORITY_MARK.medium));
        el.append(h('span', 'text'));
        // The device's state word, not its detail text: the detail was written at the transition
        // ("no data for 3 s") and would contradict the running clock beside it.
        el.append(h('span', 'src', b.kind));
        return el;
      });
      this._bannerEls = bannerEls;
      this._tech.replaceChildren(...bannerEls, ...tech.slice(0, MAX_TECH).map((a) => alarmEntry(a, stale)));
      if (tech.length > MAX_TECH) this._tech.append(h('div', 'alarm more', `+${tech.length - MAX_TECH} more`));
    }
    banners.forEach((b, i) => setText(this._bannerEls[i]?.querySelector('.text'), b.text));
    const top = physio[0]?.priority ?? null;
    setAttr(this, 'data-top-priority', stale ? null : top);
  }
}

customElements.define('vigil-alarm-banner', VigilAlarmBanner);
