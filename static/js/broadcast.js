// A broadcast's progress: the bar and each recipient's status follow the delivery receipts.
import { el, poll, pollMs, retryForm } from './common.js';

const panel = document.getElementById('progress');
if (panel) {
  const bar = document.getElementById('progress-bar');
  const summary = document.getElementById('progress-summary');
  const list = document.getElementById('recipients');
  let lastKey = null;

  function render(r) {
    const name = r.code !== null ? `#${r.code} ${r.name}` : '';
    return el(
      'li',
      { className: `recipient state-${r.state}`, 'data-message': r.message_id },
      el('span', { className: 'recipient-name' }, name),
      r.pupils ? el('span', { className: 'recipient-pupils' }, `For ${r.pupils}`) : null,
      el('span', { className: 'recipient-status' }, el('span', { className: 'dot', 'aria-hidden': 'true' }), r.status + (r.reason ? `: ${r.reason}` : '') + (r.attempts > 1 ? ' (sent again)' : '')),
      r.retry_url ? retryForm(r.retry_url, ` to ${name}`) : null,
    );
  }

  poll(panel.dataset.pollUrl, (data) => {
    bar.max = Math.max(data.total, 1);
    bar.value = data.done;
    bar.textContent = `${data.done} of ${data.total}`;
    const c = data.counts;
    const text = `${data.done} of ${data.total} done: ${c.delivered} delivered, ${c.failed} not delivered, ${c.queued + c.sent} on the way.`;
    if (summary.textContent !== text) summary.textContent = text;
    const key = JSON.stringify(data.recipients);
    if (key !== lastKey) {
      lastKey = key;
      const focused = document.activeElement && document.activeElement.closest('li.recipient');
      const focusedId = focused ? focused.dataset.message : null;
      list.replaceChildren(...data.recipients.map(render));
      if (focusedId) {
        const again = list.querySelector(`li[data-message="${CSS.escape(focusedId)}"] button`);
        if (again) again.focus();
      }
    }
    panel.dataset.finished = data.finished ? 'yes' : 'no';
    return !data.finished; // nothing changes once every text has arrived or failed
  }, pollMs(panel, 2000));
}
