// The inbox: the list of conversations follows new texts without a reload.
import { el, poll, pollMs } from './common.js';

const list = document.getElementById('threads');
if (list) {
  const empty = document.getElementById('threads-empty');
  const status = document.getElementById('inbox-status');
  let lastKey = null;
  const unread = new Map(
    [...list.querySelectorAll('li.thread')].map((li) => [li.dataset.code, Number(li.dataset.unread || 0)]),
  );

  function render(t) {
    const badges = el('span', { className: 'thread-badges' });
    if (t.unread) badges.append(el('span', { className: 'badge' }, `${t.unread} unread`));
    if (t.waiting_since) {
      badges.append(' ', el('span', { className: `badge ${t.overdue ? 'bad' : 'warn'}` }, `Waiting for a reply since ${t.waiting_time}`));
    }
    if (t.opted_out) badges.append(' ', el('span', { className: 'badge muted' }, 'Opted out'));
    return el(
      'li',
      { className: t.unread ? 'thread unread' : 'thread', 'data-code': t.code, 'data-unread': t.unread },
      el(
        'a',
        { href: t.url },
        el('span', { className: 'thread-top' }, el('span', { className: 'thread-name' }, `#${t.code} ${t.name}`), ' ', el('time', { datetime: t.last_at }, t.last_time)),
        t.pupils ? el('span', { className: 'thread-pupils' }, `For ${t.pupils}`) : null,
        el('span', { className: 'thread-preview' }, (t.last_from === 'staff' ? 'Staff: ' : '') + t.last_text),
        badges,
      ),
    );
  }

  poll(list.dataset.pollUrl, (data) => {
    const key = JSON.stringify(data.threads);
    if (key === lastKey) return true;
    lastKey = key;
    const news = data.threads.filter((t) => t.unread > (unread.get(String(t.code)) || 0));
    unread.clear();
    data.threads.forEach((t) => unread.set(String(t.code), t.unread));
    const focused = document.activeElement && document.activeElement.closest('li.thread');
    const focusedCode = focused ? focused.dataset.code : null;
    list.replaceChildren(...data.threads.map(render));
    empty.hidden = data.threads.length > 0;
    if (focusedCode) {
      const again = list.querySelector(`li.thread[data-code="${CSS.escape(focusedCode)}"] a`);
      if (again) again.focus();
    }
    const summary = `${data.unread} unread · ${data.waiting} waiting for a reply`;
    // Compared with what the page showed when it loaded, then with the last answer.
    const heads = news.map((t) => `New text from ${t.name}. `).join('');
    const text = heads + summary;
    if (status.textContent !== text) status.textContent = text;
    return true;
  }, pollMs(list));
}
