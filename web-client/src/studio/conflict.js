// A refused publish (412): what you have and what the server has now, side by side, with
// the lines that differ marked; load theirs (yours stay one Undo away) or publish yours over
// theirs knowingly.
function lines(doc) {
  return JSON.stringify(doc, null, 2).split('\n');
}

function column(title, doc, other) {
  const otherSet = new Set(other);
  const box = document.createElement('div');
  box.className = 'conflict-col';
  const h = document.createElement('h3');
  h.textContent = title;
  const pre = document.createElement('pre');
  for (const line of lines(doc)) {
    const span = document.createElement(otherSet.has(line) ? 'span' : 'mark');
    span.textContent = `${line}\n`;
    pre.append(span);
  }
  box.append(h, pre);
  return box;
}

export function showConflict(box, { mine, theirs, onTakeTheirs, onOverwrite }) {
  box.replaceChildren();
  const p = document.createElement('p');
  p.textContent = 'Not published: someone else published this display, or its file was changed '
    + 'on the server, after you opened it. Nothing was overwritten. Compare (changed lines are marked):';
  const cols = document.createElement('div');
  cols.className = 'conflict-cols';
  cols.append(column('Your version', mine, lines(theirs)), column('Now on the server', theirs, lines(mine)));
  const take = document.createElement('button');
  take.type = 'button';
  take.className = 'secondary';
  take.id = 'ed-take-theirs';
  take.textContent = 'Load the server’s version';
  const over = document.createElement('button');
  over.type = 'button';
  over.className = 'danger';
  over.id = 'ed-overwrite';
  over.textContent = 'Publish mine over it';
  const done = () => {
    box.hidden = true;
  };
  take.addEventListener('click', () => {
    done();
    onTakeTheirs();
  });
  over.addEventListener('click', () => {
    done();
    onOverwrite();
  });
  const actions = document.createElement('p');
  actions.className = 'conflict-actions';
  actions.append(take, over);
  box.append(p, cols, actions);
  box.hidden = false;
  box.focus();
}
