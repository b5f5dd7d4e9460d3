// Text fields of the display state were rendered by the server with HTML autoescape.
// Drawing them in WebGL (or setting them with textContent) needs the plain text back.
const ENTITIES = { '&lt;': '<', '&gt;': '>', '&#34;': '"', '&quot;': '"', '&#39;': "'",
  '&#x27;': "'", '&amp;': '&' };

export function decodeEntities(value) {
  if (typeof value !== 'string') return '';
  // One pass, so "&amp;lt;" decodes to the literal "&lt;" and never to "<".
  return value.replace(/&(lt|gt|#34|quot|#39|#x27|amp);/g, (m) => ENTITIES[m]);
}
