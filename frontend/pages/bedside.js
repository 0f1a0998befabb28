// Bedside page: one bay, full-rate waveforms. URL: /bedside.html?bay=<bay id>

import { loadUiConfig, startLive } from '../lib/app.js';
import { startAlarmAudio } from '../lib/audio.js';
import { h } from '../lib/format.js';
import '../components/vigil-alarm-banner.js';
import '../components/vigil-alarm-controls.js';
import '../components/vigil-alarm-log.js';
import '../components/vigil-audio-status.js';
import '../components/vigil-connection-banner.js';
import '../components/vigil-device-list.js';
import '../components/vigil-header.js';
import '../components/vigil-nibp.js';
import '../components/vigil-numeric.js';
import '../components/vigil-procedure.js';
import '../components/vigil-restart-notice.js';
import '../components/vigil-session-panel.js';
import '../components/vigil-sim-control.js';
import '../components/vigil-trends.js';
import '../components/vigil-waveform.js';

const bayId = new URLSearchParams(location.search).get('bay');

if (!bayId) {
  const note = h('div', 'notice notice-server', 'No bay chosen (bedside.html?bay=<bay id>). ');
  note.id = 'server-error';
  const a = h('a', '', 'Choose a bay');
  a.href = '/';
  note.append(a);
  document.body.prepend(note);
} else {
  for (const el of document.querySelectorAll('[data-bind-bay]')) el.setAttribute('bay', bayId);
  document.body.dataset.bay = bayId;
  await loadUiConfig(); // the clinic's time zone, before any time is shown
  const { store } = startLive({ bays: [bayId], waves: 'full' });
  startAlarmAudio({ bays: () => [bayId] });
  store.addEventListener('change', () => {
    const label = store.bays.get(bayId)?.label ?? bayId;
    const title = `${label} — Vigil bedside`;
    if (document.title !== title) document.title = title;
  });
}
