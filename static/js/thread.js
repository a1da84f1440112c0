// A conversation: new texts and delivery receipts appear without a reload, and what is shown
// is marked read.
import { el, poll, pollMs, postForm, retryForm } from './common.js';

const list = document.getElementById('conversation');
if (list) {
  const empty = document.getElementById('conversation-empty');
  const announce = document.getElementById('thread-announce');
  const signatures = new Map(
    [...list.querySelectorAll('li.msg')].map((li) => [li.dataset.id, li.dataset.sig]),
  );
  const states = new Map(
    [...list.querySelectorAll('li.msg')].map((li) => [li.dataset.id, li.dataset.state]),
  );
  let lastRead = Math.max(0, ...[...signatures.keys()].map(Number));

  const signature = (m) => [m.state, m.status, m.reason, m.note, m.retry_url || ''].join('|');

  function foot(m) {
    const parts = [];
    if (m.side === 'staff') {
      parts.push(el('p', { className: 'msg-status' }, el('span', { className: 'dot', 'aria-hidden': 'true' }), m.status + (m.reason ? `: ${m.reason}` : '')));
    }
    if (m.note) parts.push(el('p', { className: 'msg-note' }, m.note));
    if (m.retry_url) parts.push(retryForm(m.retry_url));
    return parts;
  }

  function render(m) {
    return el(
      'li',
      { className: `msg msg-${m.side} state-${m.state}`, id: `m-${m.id}`, 'data-id': m.id, 'data-sig': signature(m), 'data-state': m.state },
      el(
        'div',
        { className: 'bubble' },
        el('p', { className: 'msg-meta' }, el('span', { className: 'msg-who' }, m.who), m.how ? ' ' : '', m.how ? el('span', { className: 'msg-how' }, m.how) : null, ' · ', el('time', { datetime: m.at }, m.time)),
        el('p', { className: 'msg-body' }, m.body),
        el('div', { className: 'msg-foot', 'aria-live': 'off' }, foot(m)),
      ),
    );
  }

  function nearEnd() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  }

  list.scrollTop = list.scrollHeight;

  poll(list.dataset.pollUrl, (data) => {
    const stick = nearEnd();
    const said = [];
    let added = 0;
    for (const m of data.messages) {
      const id = String(m.id);
      const sig = signature(m);
      const shown = document.getElementById(`m-${id}`);
      if (!shown) {
        list.append(render(m));
        added += 1;
      } else if (signatures.get(id) !== sig) {
        shown.className = `msg msg-${m.side} state-${m.state}`;
        shown.dataset.sig = sig;
        shown.dataset.state = m.state;
        shown.querySelector('.msg-foot').replaceChildren(...foot(m));
        if (m.side === 'staff' && states.get(id) !== m.state && ['delivered', 'failed'].includes(m.state)) {
          said.push(`Your text to ${data.name}: ${m.status.toLowerCase()}${m.reason ? `, ${m.reason}` : ''}.`);
        }
      }
      signatures.set(id, sig);
      states.set(id, m.state);
    }
    empty.hidden = data.messages.length > 0;
    if (added && stick) list.scrollTop = list.scrollHeight;
    if (said.length) announce.textContent = said.join(' ');
    const newest = Math.max(0, ...data.messages.map((m) => m.id));
    if (newest > lastRead && !document.hidden) {
      lastRead = newest;
      postForm(list.dataset.readUrl, { up_to: newest }).catch(() => {});
    }
    return true;
  }, pollMs(list));
}
