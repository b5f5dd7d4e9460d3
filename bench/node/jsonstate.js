'use strict';
// JSON Patch (RFC 6902) with structural sharing, and canonical JSON (RFC 8785 for the
// values display states hold: JSON.stringify's numbers and strings, keys sorted by UTF-16
// code units): shared by the bench's Node load generators (loadgen.js, drill.js).

// ---- JSON Patch: never mutates its input ------------------------------------------

function tokens(pointer) {
  if (pointer === '') return [];
  if (pointer[0] !== '/') throw new Error(`bad JSON pointer ${pointer}`);
  return pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function shallow(value) {
  return Array.isArray(value) ? value.slice() : Object.assign({}, value);
}

function getAt(root, toks) {
  let node = root;
  for (const t of toks) {
    if (node === null || typeof node !== 'object' || !(t in node)) {
      throw new Error(`path /${toks.join('/')} not found`);
    }
    node = node[t];
  }
  return node;
}

// Returns a new root where the container at toks[:-1] is a fresh copy, and that copy.
function copyPath(root, toks) {
  const newRoot = shallow(root);
  let node = newRoot;
  for (let i = 0; i < toks.length - 1; i++) {
    const child = node[toks[i]];
    if (child === null || typeof child !== 'object') {
      throw new Error(`path /${toks.join('/')}: no container at ${toks[i]}`);
    }
    node[toks[i]] = shallow(child);
    node = node[toks[i]];
  }
  return [newRoot, node];
}

function setAt(root, toks, value, insert) {
  if (toks.length === 0) return value;
  const [newRoot, parent] = copyPath(root, toks);
  const last = toks[toks.length - 1];
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : parseInt(last, 10);
    if (insert) parent.splice(index, 0, value); else parent[index] = value;
  } else {
    if (!insert && !(last in parent)) throw new Error(`replace: /${toks.join('/')} missing`);
    parent[last] = value;
  }
  return newRoot;
}

function removeAt(root, toks) {
  const [newRoot, parent] = copyPath(root, toks);
  const last = toks[toks.length - 1];
  if (Array.isArray(parent)) parent.splice(parseInt(last, 10), 1);
  else if (last in parent) delete parent[last];
  else throw new Error(`remove: /${toks.join('/')} missing`);
  return newRoot;
}

function applyOps(state, ops) {
  let root = state;
  for (const op of ops) {
    const path = tokens(op.path);
    switch (op.op) {
      case 'add': root = setAt(root, path, op.value, true); break;
      case 'replace': root = setAt(root, path, op.value, false); break;
      case 'remove': root = removeAt(root, path); break;
      case 'move': {
        const value = getAt(root, tokens(op.from));
        root = setAt(removeAt(root, tokens(op.from)), path, value, true);
        break;
      }
      case 'copy': root = setAt(root, path, getAt(root, tokens(op.from)), true); break;
      case 'test':
        if (canonical(getAt(root, path)) !== canonical(op.value)) throw new Error('test failed');
        break;
      default: throw new Error(`unknown op ${op.op}`);
    }
  }
  return root;
}

function canonical(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
}

module.exports = { applyOps, canonical, setAt, tokens };
