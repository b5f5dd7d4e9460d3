// "Schedule this version…" in the editor's Publish card (issue #24): the current draft is
// posted with If-Match to .../schedule (POST), pinned there and published at the chosen
// time in the market's timezone; the pending schedules are listed (GET) with Cancel
// (DELETE). Refusals are said in plain words: 422 (a time in the past, or a draft with
// problems), 412 (the display was published by someone else since it was opened).
import { call, problemsOf } from './api.js';

function when(iso, timeZone) {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone, weekday: 'short', day: '2-digit', month: 'short', year: 'numeric',
    hour: '2-digit', minute: '2-digit',
  }).format(new Date(iso));
}

export function refusal(result) {
  if (result.status === 412) {
    return 'Not scheduled: someone published this display after you opened it. Publish '
      + 'or load their version first (Publish shows both), then schedule again.';
  }
  if (result.status === 428) return 'Not scheduled: reload the page and try again.';
  const messages = problemsOf(result).map((p) => (p.pointer ? `${p.pointer}: ` : '') + p.message);
  if (result.status === 422 && /in the past/.test(messages.join(' '))) {
    return 'Not scheduled: that time has passed. Choose a later time.';
  }
  const head = result.status === 422 ? 'Not scheduled: the draft has problems to fix first'
    : `Not scheduled (the server answered ${result.status})`;
  return `${head}: ${messages.join('; ')}`;
}

export function setupSchedule({ url, timeZone, input, button, message, list, draft, etag, onChange }) {
  const say = (text, bad = false) => {
    message.textContent = text;
    message.classList.toggle('field-error', bad);
  };

  async function draw() {
    const result = await call(url);
    list.replaceChildren();
    if (!result.ok || !Array.isArray(result.data)) {
      say(`The schedules could not be read (${result.status}).`, true);
      return;
    }
    const pending = result.data.filter((r) => r.state === 'pending');
    if (!pending.length) {
      const li = document.createElement('li');
      li.className = 'muted';
      li.textContent = 'Nothing scheduled for this display.';
      list.append(li);
    }
    for (const r of pending) {
      const li = document.createElement('li');
      const text = document.createElement('span');
      text.textContent = `Publishes at ${when(r.at, timeZone)}, by ${r.actor}`;
      li.append(text);
      if (r.newer_version) {
        const warn = document.createElement('p');
        warn.className = 'field-error';
        warn.textContent = 'The display was published again since: this schedule will replace that newer version.';
        li.append(warn);
      }
      const cancel = document.createElement('button');
      cancel.type = 'button';
      cancel.className = 'secondary';
      cancel.textContent = 'Cancel';
      cancel.setAttribute('aria-label', `Cancel the publish at ${when(r.at, timeZone)}`);
      cancel.addEventListener('click', async () => {
        const done = await call(`${url}/${r.id}`, { method: 'DELETE' });
        say(done.ok ? 'Schedule cancelled.' : refusal(done), !done.ok);
        await draw();
      });
      li.append(' ', cancel);
      list.append(li);
    }
    onChange?.(pending);
  }

  button.addEventListener('click', async () => {
    if (!input.value) {
      say('Choose a date and time first.', true);
      input.focus();
      return;
    }
    button.disabled = true;
    say('Scheduling…');
    const result = await call(url, {
      method: 'POST', body: { at: input.value, document: draft() }, headers: { 'If-Match': etag() },
    });
    button.disabled = false;
    if (result.ok) say(`Scheduled: this version publishes at ${when(result.data.at, timeZone)}.`);
    else say(refusal(result), true);
    input.setAttribute('aria-invalid', String(!result.ok));
    await draw();
  });
  return { draw };
}
