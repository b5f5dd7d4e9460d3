// The display's scene document (the YAML file's data, as JSON) and the edits the editor
// makes to it. Nodes nest in groups (`children`); every node has a JSON Pointer into the
// document, which is how the API names a problem (/display/nodes/2/children/0/text).

export const clone = (value) => JSON.parse(JSON.stringify(value));

// Depth-first walk: {node, pointer, list, index, depth, parent} for every node.
export function walk(doc) {
  const out = [];
  const visit = (list, base, depth, parent) => {
    list.forEach((node, index) => {
      const pointer = `${base}/${index}`;
      out.push({ node, pointer, list, index, depth, parent });
      if (Array.isArray(node.children)) visit(node.children, `${pointer}/children`, depth + 1, node.id);
    });
  };
  visit(doc?.display?.nodes || [], '/display/nodes', 0, null);
  return out;
}

export function find(doc, id) {
  return walk(doc).find((entry) => entry.node.id === id) || null;
}

// The value at a JSON Pointer (RFC 6901) and setting it.
export function parsePointer(pointer) {
  return pointer.split('/').slice(1).map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
}

export function setAt(doc, pointer, value) {
  const parts = parsePointer(pointer);
  let target = doc;
  for (const part of parts.slice(0, -1)) target = target[part];
  const last = parts.at(-1);
  if (value === undefined) delete target[last];
  else target[last] = value;
}

export function getAt(doc, pointer) {
  let target = doc;
  for (const part of parsePointer(pointer)) {
    if (target === null || typeof target !== 'object') return undefined;
    target = target[part];
  }
  return target;
}

// A node id not used yet: `base`, `base-2`, `base-3`, ...
export function freshId(doc, base) {
  const used = new Set(walk(doc).map((e) => e.node.id));
  const clean = String(base).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '')
    .slice(0, 50) || 'node';
  if (!used.has(clean)) return clean;
  for (let n = 2; ; n += 1) if (!used.has(`${clean}-${n}`)) return `${clean}-${n}`;
}

// Add a node after the selected one (into it when it is a group), else at the end.
export function insert(doc, node, afterId = null) {
  const at = afterId ? find(doc, afterId) : null;
  if (at && Array.isArray(at.node.children) && at.node.kind === 'group') at.node.children.push(node);
  else if (at) at.list.splice(at.index + 1, 0, node);
  else doc.display.nodes.push(node);
}

export function remove(doc, id) {
  const at = find(doc, id);
  if (at) at.list.splice(at.index, 1);
  return Boolean(at);
}

// Move a node one place up (-1) or down (+1) among its siblings; out of / into groups at
// the ends is done with "indent"/"outdent".
export function move(doc, id, step) {
  const at = find(doc, id);
  if (!at) return false;
  const to = at.index + step;
  if (to < 0 || to >= at.list.length) return false;
  const [node] = at.list.splice(at.index, 1);
  at.list.splice(to, 0, node);
  return true;
}

// Put a node into the group just above it (indent) or after its group (outdent).
export function regroup(doc, id, direction) {
  const at = find(doc, id);
  if (!at) return false;
  if (direction > 0) {
    const above = at.list[at.index - 1];
    if (!above || above.kind !== 'group') return false;
    at.list.splice(at.index, 1);
    (above.children ||= []).push(at.node);
    return true;
  }
  if (!at.parent) return false;
  const group = find(doc, at.parent);
  at.list.splice(at.index, 1);
  group.list.splice(group.index + 1, 0, at.node);
  return true;
}

// The node's transform as three numbers each (scale may be one number in the file).
export function transformOf(node) {
  const three = (v, d) => (Array.isArray(v) && v.length === 3 ? v.map(Number) : [d, d, d]);
  const s = node.scale;
  return {
    position: three(node.position, 0),
    rotation: three(node.rotation, 0),
    scale: typeof s === 'number' ? [s, s, s] : three(s, 1),
  };
}

const round = (v, places) => Number(v.toFixed(places));

// Write a transform back, rounded (mm, 0.1°, 0.001) and in the file's shortest form:
// a uniform scale stays one number, a default transform stays unwritten.
export function setTransform(node, { position, rotation, scale }) {
  const p = position.map((v) => round(v, 3) + 0);
  const r = rotation.map((v) => round(v, 1) + 0);
  const s = scale.map((v) => round(v, 3));
  const same = (a, b) => a.every((v, i) => v === b[i]);
  if (!same(p, [0, 0, 0]) || 'position' in node) node.position = p;
  if (!same(r, [0, 0, 0]) || 'rotation' in node) node.rotation = r;
  const uniform = s[0] === s[1] && s[1] === s[2];
  if (uniform && s[0] === 1 && !('scale' in node)) return;
  node.scale = uniform ? s[0] : s;
}
