// The display's published versions (the revisions API): who, when, what; each one's
// changes as a diff of the file, and Restore, which publishes that version again as a new
// revision (under If-Match, like Publish).
import { call } from './api.js';

function button(text, className, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.textContent = text;
  b.addEventListener('click', onClick);
  return b;
}

export async function renderHistory(list, { url, onRestore }) {
  const result = await call(url);
  list.replaceChildren();
  if (!result.ok || !Array.isArray(result.data)) {
    list.textContent = `The history could not be read (${result.status}).`;
    return;
  }
  if (!result.data.length) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = 'Not changed in the studio yet: the scene file is as it was written.';
    list.append(p);
    return;
  }
  const ol = document.createElement('ol');
  ol.className = 'ed-revisions';
  for (const r of result.data) {
    const li = document.createElement('li');
    const what = document.createElement('span');
    what.textContent = `${r.number}. ${r.action} · ${r.actor.replace(/^user:/, '')} · ${new Date(r.at).toLocaleString()}`;
    const diff = document.createElement('pre');
    diff.className = 'ed-diff';
    diff.hidden = true;
    const show = button('Show changes', 'secondary', async () => {
      if (diff.hidden && !diff.textContent) {
        const one = await call(`${url}/${r.number}`);
        diff.textContent = one.ok ? (one.data.diff || '(no change to the file)') : `(${one.status})`;
      }
      diff.hidden = !diff.hidden;
      show.textContent = diff.hidden ? 'Show changes' : 'Hide changes';
    });
    li.append(what, show);
    if (r.action !== 'delete') {
      li.append(button('Restore', 'secondary', () => onRestore(r)));
    }
    li.append(diff);
    ol.append(li);
  }
  list.append(ol);
}
