// whatif.html[?session=SID]: hosts <vigil-whatif> alone (the review page embeds the same component beside
// its replay). Without ?session=, the newest recorded session (GET /api/recordings). Row clicks
// (vigil-seek) are echoed below the table, since there is no replay on this page to seek.

import '../components/vigil-whatif.js';
import { formatClock, h, setText } from '../lib/format.js';

const $ = (id) => document.getElementById(id);

async function main() {
  let sid = new URLSearchParams(window.location.search).get('session');
  let label = sid ?? '';
  if (!sid) {
    const res = await fetch('/api/recordings');
    const list = res.ok ? await res.json() : [];
    if (!list.length) {
      setText($('whatif-session'), 'No recorded session yet.');
      return;
    }
    sid = list[0].session_id;
    label = `${list[0].patient_name} · ${list[0].bay} · ${formatClock(list[0].start, false)}`;
  }
  setText($('whatif-session'), `Session ${label}`);
  const el = h('vigil-whatif');
  el.setAttribute('session', sid);
  $('whatif-slot').replaceChildren(el);
  document.addEventListener('vigil-seek', (ev) => {
    setText($('whatif-seek'), `Seek to ${formatClock(ev.detail.t)}`);
    document.body.dataset.seek = String(ev.detail.t);
  });
}

main();
