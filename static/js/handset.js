// A simulated phone: texts arrive without a reload.
import { el, poll, pollMs } from './common.js';

const list = document.getElementById('handset-texts');
if (list) {
  const empty = document.getElementById('handset-empty');
  const shown = new Set([...list.querySelectorAll('li.sms')].map((li) => li.dataset.sid));
  list.scrollTop = list.scrollHeight;

  function render(t) {
    return el(
      'li',
      { className: `sms sms-${t.direction}`, 'data-sid': t.sid },
      el('p', { className: 'sms-meta' }, `${t.direction === 'received' ? 'From' : 'To'} ${t.other_label} · `, el('time', { datetime: t.at }, t.time)),
      el('p', { className: 'sms-body' }, t.body),
      t.media ? el('p', { className: 'sms-meta' }, `📷 ${t.media} photo${t.media === 1 ? '' : 's'}`) : null,
    );
  }

  poll(list.dataset.pollUrl, (data) => {
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
    let added = 0;
    for (const t of data.texts) {
      if (shown.has(t.sid)) continue;
      shown.add(t.sid);
      list.append(render(t));
      added += 1;
    }
    empty.hidden = data.texts.length > 0;
    if (added && stick) list.scrollTop = list.scrollHeight;
    return true;
  }, pollMs(list, 2000));
}
