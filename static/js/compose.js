// Writing a text: templates fill the box, a live character count, and one send per click.

// Picking a template fills the message box and selects its first {placeholder}, so that
// typing replaces it. Without this script, "Use template" reloads the page with it filled in.
const PLACEHOLDER = /\{\s*[A-Za-z][A-Za-z0-9 _-]{0,30}?\s*\}/;

for (const picker of document.querySelectorAll('form.template-picker')) {
  const box = document.getElementById(picker.dataset.templateTarget);
  const select = picker.querySelector('select');
  if (!box || !select) continue;
  const bodies = new Set([...select.options].map((o) => o.dataset.body).filter(Boolean));

  const fill = (focus) => {
    const option = select.selectedOptions[0];
    if (!option || !option.dataset.body) return;
    box.value = option.dataset.body;
    box.dispatchEvent(new Event('input'));
    const match = PLACEHOLDER.exec(box.value);
    if (focus) box.focus();
    if (match) box.setSelectionRange(match.index, match.index + match[0].length);
  };

  // Arrow keys on a closed list change it too: only an empty or untouched box is filled then.
  select.addEventListener('change', () => {
    if (!box.value.trim() || bodies.has(box.value)) fill(false);
  });
  picker.addEventListener('submit', (event) => {
    event.preventDefault();
    fill(true);
  });
}

// "123 of 1,600 characters", and how many too many.
for (const counter of document.querySelectorAll('[data-counts]')) {
  const box = document.getElementById(counter.dataset.counts);
  const max = Number(counter.dataset.max);
  if (!box || !max) continue;
  counter.hidden = false;
  const update = () => {
    const n = box.value.trim().length;
    const over = n - max;
    counter.textContent =
      `${n.toLocaleString('en-GB')} of ${max.toLocaleString('en-GB')} characters` +
      (over > 0 ? `: ${over.toLocaleString('en-GB')} too many` : '');
    counter.classList.toggle('over', over > 0);
  };
  box.addEventListener('input', update);
  box.setAttribute('aria-describedby', `${box.getAttribute('aria-describedby') || ''} ${counter.id}`.trim());
  update();
}

// A second click while the first is on its way does nothing (the form's one-time key makes
// sure of it on the server too).
for (const form of document.querySelectorAll('form.compose-form')) {
  form.addEventListener('submit', (event) => {
    if (form.dataset.sending) {
      event.preventDefault();
      return;
    }
    form.dataset.sending = 'yes';
    for (const button of form.querySelectorAll('button[type=submit]')) {
      button.setAttribute('aria-disabled', 'true');
      button.classList.add('busy');
    }
  });
}
// Back to a page kept in the browser's cache: it may be sent again.
window.addEventListener('pageshow', () => {
  for (const form of document.querySelectorAll('form.compose-form')) {
    delete form.dataset.sending;
    for (const button of form.querySelectorAll('button')) {
      button.removeAttribute('aria-disabled');
      button.classList.remove('busy');
    }
  }
});
