// Shared by the live pages: polling a JSON endpoint, CSRF for POSTs, and building elements.
// Text from the server only ever becomes text nodes, never HTML, so a parent's "<script>" is
// shown as what it is.

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : '';
}

// el('p', {className: 'x', 'aria-live': 'polite'}, 'text', child, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'className') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false || child === '') continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Ask `url` every `intervalMs` while the page is visible; hand each answer to `onData`, which
// returns false to stop. Stops when signed out (a redirect) or refused; backs off on errors.
export function poll(url, onData, intervalMs) {
  let timer = null;
  let failures = 0;
  let stopped = false;
  let busy = false;

  async function tick() {
    timer = null;
    if (stopped || busy) return;
    if (document.hidden) return; // visibilitychange starts it again
    busy = true;
    try {
      const response = await fetch(url, {
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
      if (response.redirected || [401, 403, 404].includes(response.status)) {
        stopped = true;
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      failures = 0;
      if (onData(await response.json()) === false) stopped = true;
    } catch (err) {
      failures += 1;
    } finally {
      busy = false;
      schedule();
    }
  }

  function schedule() {
    if (stopped || timer !== null || document.hidden) return;
    timer = setTimeout(tick, intervalMs * Math.min(2 ** failures, 10));
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && !stopped) {
      clearTimeout(timer);
      timer = null;
      tick();
    }
  });
  schedule();
  return {
    now() {
      clearTimeout(timer);
      timer = null;
      stopped = false;
      tick();
    },
  };
}

// A form-encoded POST with the CSRF token in the header Flask-WTF reads.
export function postForm(url, data) {
  return fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'X-CSRFToken': csrfToken(), Accept: 'application/json' },
    body: new URLSearchParams(data),
  });
}

// The "Send again" form, as the server renders it.
export function retryForm(url, hiddenLabel) {
  return el(
    'form',
    { method: 'post', action: url, className: 'retry' },
    el('input', { type: 'hidden', name: 'csrf_token', value: csrfToken() }),
    el(
      'button',
      { type: 'submit' },
      'Send again',
      hiddenLabel ? el('span', { className: 'visually-hidden' }, hiddenLabel) : null,
    ),
  );
}

export function pollMs(node, fallback = 3000) {
  const value = parseInt(node.dataset.pollMs, 10);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}
