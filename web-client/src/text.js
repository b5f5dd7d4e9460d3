// Text fields of the display state are plain text (docs/protocol.md): data, never markup.
// They are drawn by three.js or set with textContent, never parsed as HTML.
export function plainText(value) {
  return typeof value === 'string' ? value : '';
}
