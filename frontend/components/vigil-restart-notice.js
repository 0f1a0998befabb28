// <vigil-restart-notice>: says so when the server this screen is connected to was restarted (issue 9,
// behaviour under faults).
//
// Every server instance has an epoch (in each `hello`). When the socket reconnects and the epoch differs
// from the one before, the server was restarted (an update, a crash, a power cut): everything on screen was
// rebuilt from the new server's snapshot, live alarm timers started again, and readings that arrived while
// it was down may be missing from the trends. A nurse must not have to guess why the screen blinked: the
// notice stays (with the time and how long ago) until dismissed or for 10 minutes.
//
// Hooks: hidden while nothing happened; data-restarts (count), .restart-at (time), button.dismiss.

import { formatAge, formatClock, h, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

const SHOW_S = 600;

class VigilRestartNotice extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      this.setAttribute('role', 'alert');
      const title = h('span', 'title', 'SERVER RESTARTED');
      this._at = h('span', 'restart-at');
      const detail = h('span', 'detail', 'screen reconnected and reloaded; readings during the outage may be missing from the trends');
      const dismiss = h('button', 'dismiss', 'Dismiss');
      dismiss.type = 'button';
      dismiss.addEventListener('click', () => {
        this._shownAt = null;
        this.hidden = true;
      });
      this.append(title, this._at, detail, dismiss);
      this.hidden = true;
      this._epoch = null;
      this._restarts = 0;
      this._shownAt = null;
    }
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    this._off?.();
  }

  render(now, store) {
    const epoch = store.hello?.epoch ?? null;
    if (epoch !== null && epoch !== this._epoch) {
      if (this._epoch !== null && !store.replay) {
        this._restarts += 1;
        this.dataset.restarts = String(this._restarts);
        this._shownAt = now;
      }
      this._epoch = epoch;
    }
    const show = this._shownAt !== null && now - this._shownAt < SHOW_S;
    this.hidden = !show;
    if (show) setText(this._at, `reconnected ${formatClock(this._shownAt)} (${formatAge(now - this._shownAt)} ago)`.replace('(now ago)', '(just now)'));
  }
}

customElements.define('vigil-restart-notice', VigilRestartNotice);
