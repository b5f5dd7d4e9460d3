// A form from the published scene schema (GET /api/v1/schema/scene, JSON Schema 2020-12 as
// pydantic writes it): each property becomes a field by its type, so a field added to the
// scene format shows up here without editor code. A few property names get a picker of what
// exists instead of a text box (`pickers`: item, asset, farm, zone, items). Every control
// carries its JSON Pointer; problems from the API are shown next to the matching field.

import './schemaform.css';

const TEMPLATE_MIN = 1000; // strings this long are templates: a text area

export function resolve(root, schema) {
  let s = schema || {};
  while (s.$ref) s = root.$defs[s.$ref.split('/').pop()];
  return s;
}

// {nullable, schema} of `anyOf: [X, {type: null}]`.
function unwrapNull(root, schema) {
  const any = schema.anyOf;
  if (Array.isArray(any) && any.length === 2 && any.some((s) => s.type === 'null')) {
    return { nullable: true, schema: { ...resolve(root, any.find((s) => s.type !== 'null')),
      title: schema.title, description: schema.description, default: schema.default } };
  }
  return { nullable: false, schema };
}

const isTriple = (s) => s?.type === 'array' && Array.isArray(s.prefixItems) && s.prefixItems.length === 3;
const label = (key, schema) => schema.title || key;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else if (k in node && typeof v !== 'string') node[k] = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

let serial = 0;
const uid = (pointer) => `f${++serial}-${pointer.replace(/[^a-z0-9]+/gi, '-')}`;

export class SchemaForm {
  /**
   * @param {object} root the whole schema (with $defs)
   * @param {object} pickers {item: [{value, label}], farm, zone, asset: (kind) => [...], bindings}
   */
  constructor(root, pickers) {
    this.root = root;
    this.pickers = pickers;
  }

  // The variants of a discriminated union (nodes, anchors): [{kind, schema}].
  variants(schema) {
    const mapping = schema.discriminator?.mapping || {};
    return Object.entries(mapping).map(([kind, ref]) => ({ kind, schema: resolve(this.root, { $ref: ref }) }));
  }

  def(name) {
    return this.root.$defs[name];
  }

  /**
   * Render `value`'s fields (object schema `schema`) into `container`.
   * onChange(key, newValue, {coalesce}) — newValue undefined removes the key.
   */
  render(container, schema, value, pointer, onChange, { skip = [], rendered = {} } = {}) {
    container.replaceChildren();
    const props = schema.properties || {};
    const required = new Set(schema.required || []);
    // Identity first, then what the curator changes most, then the transform.
    const order = Object.keys(props).sort((a, b) => rank(a) - rank(b));
    for (const key of order) {
      if (skip.includes(key)) continue;
      const field = this.field(key, props[key], value?.[key], `${pointer}/${key}`, required.has(key),
        (v, opts) => onChange(key, v, opts), rendered[key]);
      if (field) container.append(field);
    }
  }

  field(key, raw, value, pointer, required, set, rendered) {
    const { nullable, schema: unwrapped } = unwrapNull(this.root, raw);
    const schema = resolve(this.root, unwrapped);
    const id = uid(pointer);
    const wrap = el('div', { class: 'sf-field', 'data-field': pointer });
    const help = (raw.description || schema.description || '').replaceAll('`', '') || null;
    const error = el('p', { class: 'field-error', 'data-error-for': pointer, id: `${id}-err`, hidden: true });
    const describedBy = [help ? `${id}-help` : null, `${id}-err`].filter(Boolean).join(' ');
    const title = label(key, raw);
    const emptyIs = (v) => (v === '' ? (nullable || !required ? undefined : '') : v);

    let control;
    if (schema.const !== undefined) {
      wrap.append(el('span', { class: 'sf-label', text: title }), el('span', { class: 'sf-const', text: String(schema.const) }));
      return wrap;
    }
    if (raw.discriminator || schema.discriminator) {
      return this.union(key, raw.discriminator ? raw : schema, value, pointer, set, title);
    }
    const pick = this.pickers[key];
    if (key === 'items' && schema.type === 'array' && this.pickers.item) {
      return this.checklist(title, this.pickers.item, value || [], pointer, set, error, help, id);
    }
    if (isTriple(schema) || (schema.anyOf && schema.anyOf.some(isTriple))) {
      const canBeNull = nullable || (schema.anyOf || []).some((s) => s.type === 'null');
      return this.triple(key, title, schema, raw, value, pointer, set, error, help, id, canBeNull);
    }
    if (pick && (schema.type === 'string')) {
      const options = typeof pick === 'function' ? pick(this.kindHint) : pick;
      control = el('select', { id, 'data-pointer': pointer, 'aria-describedby': describedBy });
      if (nullable || !required) control.append(el('option', { value: '', text: '— none —' }));
      const known = new Set(options.map((o) => o.value));
      if (value && !known.has(value)) control.append(el('option', { value, text: `${value} (not found)` }));
      for (const o of options) control.append(el('option', { value: o.value, text: o.label }));
      control.value = value ?? '';
      control.addEventListener('change', () => set(emptyIs(control.value)));
      const thumbOf = this.pickers[`${key}Thumbnail`];
      if (thumbOf) {
        // A picture of what is chosen (the asset library's thumbnail).
        const img = el('img', { class: 'sf-thumb', alt: '', width: 96, height: 96, loading: 'lazy' });
        const show = () => {
          const src = control.value ? thumbOf(control.value) : null;
          img.hidden = !src;
          if (src) img.src = src;
        };
        // What the pipeline noted about it (its report's warnings, the validator's too).
        const notesOf = this.pickers[`${key}Notes`];
        const list = el('ul');
        const notes = el('div', { class: 'sf-notes muted' }, el('p', { text: 'The asset pipeline noted:' }), list);
        const showNotes = () => {
          const found = control.value && notesOf ? notesOf(control.value) : [];
          list.replaceChildren(...found.map((text) => el('li', { text })));
          notes.hidden = !found.length;
        };
        control.addEventListener('change', show);
        control.addEventListener('change', showNotes);
        show();
        showNotes();
        wrap.append(el('label', { for: id, text: title }), control, img, notes, error);
        if (help) wrap.append(el('p', { class: 'sf-help muted', id: `${id}-help`, text: help }));
        return wrap;
      }
    } else if (schema.enum) {
      control = el('select', { id, 'data-pointer': pointer, 'aria-describedby': describedBy });
      for (const v of schema.enum) control.append(el('option', { value: v, text: v }));
      control.value = value ?? raw.default ?? schema.enum[0];
      control.addEventListener('change', () => set(control.value));
    } else if (schema.type === 'boolean') {
      control = el('input', { type: 'checkbox', id, 'data-pointer': pointer, 'aria-describedby': describedBy });
      control.checked = value ?? raw.default ?? false;
      control.addEventListener('change', () => set(control.checked));
    } else if (schema.type === 'number' || schema.type === 'integer') {
      control = el('input', { type: 'number', id, 'data-pointer': pointer, step: schema.type === 'integer' ? '1' : 'any',
        min: schema.minimum ?? schema.exclusiveMinimum, max: schema.maximum ?? schema.exclusiveMaximum,
        inputmode: 'decimal', 'aria-describedby': describedBy, placeholder: raw.default ?? '' });
      control.value = value ?? '';
      control.addEventListener('input', () => {
        const v = control.value === '' ? undefined : Number(control.value);
        if (v === undefined || Number.isFinite(v)) set(v, { coalesce: pointer });
      });
    } else if (schema.type === 'string' && /^\^#\[0-9a-fA-F\]\{6\}\$$/.test(schema.pattern || '')) {
      control = el('input', { type: 'color', id, 'data-pointer': pointer, 'aria-describedby': describedBy });
      control.value = value ?? raw.default ?? '#ffffff';
      control.addEventListener('input', () => set(control.value, { coalesce: pointer }));
    } else if (schema.type === 'string') {
      const long = (schema.maxLength || 0) >= TEMPLATE_MIN;
      control = el(long ? 'textarea' : 'input', { id, 'data-pointer': pointer, 'aria-describedby': describedBy,
        maxlength: schema.maxLength, rows: long ? 2 : undefined, spellcheck: long ? 'true' : 'false' });
      if (!long) control.type = 'text';
      control.value = value ?? '';
      control.addEventListener('input', () => set(emptyIs(control.value), { coalesce: pointer }));
      if (long && this.pickers.bindings) {
        wrap.dataset.template = 'true';
        const names = el('div', { class: 'sf-bindings' });
        for (const name of this.pickers.bindings) {
          const b = el('button', { type: 'button', class: 'sf-chip', text: name, 'aria-label': `Insert ${name} into ${title}` });
          b.addEventListener('click', () => {
            const at = control.selectionStart ?? control.value.length;
            const snippet = `{{ ${name} }}`;
            control.value = control.value.slice(0, at) + snippet + control.value.slice(control.selectionEnd ?? at);
            control.focus();
            control.selectionStart = control.selectionEnd = at + snippet.length;
            set(control.value, { coalesce: pointer });
          });
          names.append(b);
        }
        const shown = el('p', { class: 'sf-rendered', 'data-rendered-for': pointer });
        shown.textContent = rendered ? `Shows: ${rendered}` : '';
        const insert = el('details', { class: 'sf-insert' }, el('summary', { text: 'Insert a value from the market…' }), names);
        wrap.append(el('label', { for: id, text: title }), control, shown, error, insert);
        if (help) wrap.append(el('p', { class: 'sf-help muted', id: `${id}-help`, text: help }));
        return wrap;
      }
    } else if (schema.type === 'array') {
      control = el('textarea', { id, 'data-pointer': pointer, rows: 3, 'aria-describedby': describedBy });
      control.value = (value || []).join('\n');
      control.addEventListener('input', () => {
        const lines = control.value.split('\n').map((s) => s.trim()).filter(Boolean);
        set(lines.length || required ? lines : undefined, { coalesce: pointer });
      });
      wrap.append(el('label', { for: id, text: `${title} (one a line)` }), control, error);
      return wrap;
    } else if (schema.type === 'object') {
      const box = el('fieldset', { class: 'sf-object', 'data-field': pointer }, el('legend', { text: title }));
      const inner = el('div');
      this.render(inner, schema, value || {}, pointer, (k, v, o) => set({ ...(value || {}), [k]: v }, o));
      box.append(inner, error);
      return box;
    } else {
      return null; // a shape this form does not know: edit it in the file
    }
    wrap.append(el('label', { for: id, text: title }), control, error);
    if (help) wrap.append(el('p', { class: 'sf-help muted', id: `${id}-help`, text: help }));
    return wrap;
  }

  // x/y/z numbers: position, rotation (degrees), scale (one number when uniform). A nullable
  // one (a show action's target) stays empty while unset, and emptying all three unsets it.
  triple(key, title, schema, raw, value, pointer, set, error, help, id, nullable = false) {
    const box = el('fieldset', { class: 'sf-triple', 'data-field': pointer }, el('legend', { text: title }));
    const scalarOk = Array.isArray(schema.anyOf);
    const d = Array.isArray(raw.default) ? raw.default : [raw.default ?? 0, raw.default ?? 0, raw.default ?? 0];
    const unset = nullable && (value === undefined || value === null);
    const now = unset ? ['', '', ''] : typeof value === 'number' ? [value, value, value] : (Array.isArray(value) ? value : d);
    const inputs = ['x', 'y', 'z'].map((axis, i) => {
      const input = el('input', { type: 'number', step: key === 'rotation' ? '1' : '0.01', inputmode: 'decimal',
        id: `${id}-${axis}`, 'data-pointer': `${pointer}/${i}`, 'aria-label': `${title} ${axis}`,
        'aria-describedby': `${id}-err` });
      input.value = now[i];
      return input;
    });
    for (const input of inputs) {
      input.addEventListener('input', () => {
        if (nullable && inputs.every((x) => x.value === '')) {
          set(undefined, { coalesce: pointer });
          return;
        }
        const v = inputs.map((x) => (x.value === '' ? NaN : Number(x.value)));
        if (!v.every(Number.isFinite)) return;
        set(scalarOk && v[0] === v[1] && v[1] === v[2] ? v[0] : v, { coalesce: pointer });
      });
    }
    const row = el('div', { class: 'sf-xyz' });
    ['x', 'y', 'z'].forEach((axis, i) => row.append(el('label', { for: `${id}-${axis}`, text: axis }), inputs[i]));
    box.append(row, error);
    if (help) box.append(el('p', { class: 'sf-help muted', id: `${id}-help`, text: help }));
    return box;
  }

  // Choose several (the display's items) from what exists.
  checklist(title, options, value, pointer, set, error, help, id) {
    const box = el('fieldset', { class: 'sf-checklist', 'data-field': pointer, 'aria-describedby': `${id}-err` },
      el('legend', { text: title }));
    const chosen = new Set(value);
    const all = [...options, ...value.filter((v) => !options.some((o) => o.value === v))
      .map((v) => ({ value: v, label: `${v} (not found)` }))];
    for (const o of all) {
      const input = el('input', { type: 'checkbox', value: o.value, id: `${id}-${o.value}`, 'data-pointer': pointer });
      input.checked = chosen.has(o.value);
      input.addEventListener('change', () => {
        if (input.checked) chosen.add(o.value);
        else chosen.delete(o.value);
        set(all.map((x) => x.value).filter((v) => chosen.has(v)));
      });
      box.append(el('label', { class: 'sf-check', for: input.id }, input, document.createTextNode(` ${o.label}`)));
    }
    if (!all.length) box.append(el('p', { class: 'muted', text: 'The market has no items yet.' }));
    box.append(error);
    if (help) box.append(el('p', { class: 'sf-help muted', id: `${id}-help`, text: help }));
    return box;
  }

  // A discriminated union (the anchor): choose the kind, then its fields.
  union(key, schema, value, pointer, set, title) {
    const box = el('fieldset', { class: 'sf-object', 'data-field': pointer }, el('legend', { text: title }));
    const variants = this.variants(schema);
    const prop = schema.discriminator.propertyName;
    const id = uid(pointer);
    const select = el('select', { id, 'data-pointer': `${pointer}/${prop}` });
    for (const v of variants) select.append(el('option', { value: v.kind, text: v.kind }));
    const current = value?.[prop] ?? schema.default?.[prop] ?? variants[0]?.kind;
    select.value = current;
    const inner = el('div');
    const draw = (kind, data) => {
      const variant = variants.find((v) => v.kind === kind);
      if (variant) {
        this.render(inner, variant.schema, data, pointer, (k, v, o) => {
          const next = { ...data, [k]: v };
          if (v === undefined) delete next[k];
          set(next, o);
        }, { skip: [prop] });
      }
    };
    select.addEventListener('change', () => {
      const data = { [prop]: select.value };
      set(data);
      draw(select.value, data);
    });
    draw(current, value || { [prop]: current });
    box.append(el('label', { for: id, text: 'Kind' }), select, inner,
      el('p', { class: 'field-error', 'data-error-for': pointer, hidden: true }));
    return box;
  }
}

const RANK = ['id', 'kind', 'title', 'text', 'asset', 'item', 'label', 'body', 'zone', 'farm', 'items'];
const TAIL = ['position', 'rotation', 'scale', 'visible'];
function rank(key) {
  const i = RANK.indexOf(key);
  if (i >= 0) return i;
  const t = TAIL.indexOf(key);
  return t >= 0 ? 100 + t : 50;
}

// Show each problem next to its field (the deepest field whose pointer starts it); the rest
// are returned for the list at the top.
export function showProblems(container, problems) {
  for (const slot of container.querySelectorAll('[data-error-for]')) {
    slot.hidden = true;
    slot.textContent = '';
  }
  for (const c of container.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  const slots = [...container.querySelectorAll('[data-error-for]')];
  const left = [];
  for (const p of problems) {
    const ptr = p.pointer || '';
    const slot = slots.filter((s) => ptr === s.dataset.errorFor || ptr.startsWith(`${s.dataset.errorFor}/`))
      .sort((a, b) => b.dataset.errorFor.length - a.dataset.errorFor.length)[0];
    if (!slot) {
      left.push(p);
      continue;
    }
    slot.hidden = false;
    slot.textContent = slot.textContent ? `${slot.textContent} ${p.message}` : p.message;
    for (const c of container.querySelectorAll(`[data-pointer^="${slot.dataset.errorFor}"]`)) c.setAttribute('aria-invalid', 'true');
  }
  return left;
}
