// The list of the display's nodes (groups indented): select one; the selected one gets
// buttons to move it up/down, into the group above / out of its group, and remove it.
import { walk } from './doc.js';

const ACTIONS = [
  ['up', '↑', 'Move up'], ['down', '↓', 'Move down'], ['in', '→', 'Into the group above'],
  ['out', '←', 'Out of its group'], ['remove', '✕', 'Remove'],
];

export function renderTree(list, { doc, selected, troubled, onSelect, onAction }) {
  list.replaceChildren();
  for (const { node, depth } of walk(doc)) {
    const li = document.createElement('li');
    li.dataset.node = node.id;
    li.style.setProperty('--depth', depth);
    const name = document.createElement('button');
    name.type = 'button';
    name.className = 'tree-name';
    name.setAttribute('aria-pressed', String(node.id === selected));
    const kind = document.createElement('span');
    kind.className = 'tree-kind';
    kind.textContent = node.kind;
    name.append(document.createTextNode(node.id), kind);
    if (troubled.has(node.id)) {
      const warn = document.createElement('span');
      warn.className = 'tree-problem';
      warn.textContent = 'problem';
      name.append(warn);
    }
    name.addEventListener('click', () => onSelect(node.id));
    li.append(name);
    if (node.id === selected) {
      const tools = document.createElement('span');
      tools.className = 'tree-tools';
      for (const [action, glyph, label] of ACTIONS) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = `secondary tree-${action}`;
        b.textContent = glyph;
        b.title = label;
        b.setAttribute('aria-label', `${label}: ${node.id}`);
        b.addEventListener('click', () => onAction(node.id, action));
        tools.append(b);
      }
      li.append(tools);
    }
    list.append(li);
  }
}
