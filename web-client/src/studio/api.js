// The authoring API with the session cookie; writes carry the page's CSRF token.
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content || '';

// The header a signed-in curator's write carries (the page's CSRF token).
export const writeHeaders = () => ({ [meta('csrf-header') || 'X-CSRF-Token']: meta('csrf-token') });

export async function call(url, { method = 'GET', body, headers = {} } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
  if (method !== 'GET') Object.assign(init.headers, writeHeaders());
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { status: response.status, ok: response.ok, data, etag: response.headers.get('ETag') };
}

// The problems of a refused write: [{pointer, message}] (422), or one general message.
export function problemsOf(result) {
  const detail = result.data?.detail;
  if (detail && Array.isArray(detail.errors)) return detail.errors;
  if (Array.isArray(detail)) {
    return detail.map((d) => ({ pointer: '', message: `${(d.loc || []).join('.')}: ${d.msg}` }));
  }
  const message = typeof detail === 'string' ? detail : detail?.message;
  return [{ pointer: '', message: message || `the server answered ${result.status}` }];
}
