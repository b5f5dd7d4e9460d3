// The offline service worker (docs/client.md, "Offline and poor network"), built with
// Workbox into dist/sw.js (vite.sw.config.js) and served at /sw.js (scope: the site). The
// server replaces `self.__WB_MANIFEST` with the display page's files (web/client.py).
//
// What it keeps:
// - the display page's script, chunks, CSS, fonts and KTX2 transcoder (precached once the
//   first visit has drawn, from the HTTP cache: it never competes with that first visit);
// - display pages a visitor opened (/d/<m>/<d>), one copy per language, answered from the
//   cache so a reload without network still shows the stall; the page asks for a fresh copy once it has
//   drawn (`refresh-page`), and the live state always comes over the stream;
// - models, textures and images (/assets/<hash>.<ext>, immutable) and the fallback fonts.
// Never: the API, the stream, staff pages, previews (?preview), sign-in, anything else.
import { precacheAndRoute, cleanupOutdatedCaches } from 'workbox-precaching';
import { registerRoute } from 'workbox-routing';
import { CacheFirst } from 'workbox-strategies';
import { ExpirationPlugin } from 'workbox-expiration';
import { CacheableResponsePlugin } from 'workbox-cacheable-response';

const VERSION = 1;
const PAGES = `holobazaar-pages-v${VERSION}`;
const MODELS = `holobazaar-models-v${VERSION}`;
const CLIENT = `holobazaar-client-v${VERSION}`;
const KEEP = new Set([PAGES, MODELS, CLIENT]);
const DISPLAY_PAGE = /^\/d\/[a-z0-9][a-z0-9-]*\/[a-z0-9][a-z0-9-]*\/?$/;

// A new build takes over at once (its precache is complete when it installs).
self.addEventListener('install', () => self.skipWaiting());

cleanupOutdatedCaches();
precacheAndRoute(self.__WB_MANIFEST);

// A new worker is a new build: cached pages name the old build's files, so they go (the
// next visit fetches the page again); caches of other versions of this file go too.
self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name === PAGES || (name.startsWith('holobazaar-') && !KEEP.has(name))) {
        await caches.delete(name);
      }
    }
    await self.clients.claim();
  })());
});

function cacheablePage(response) {
  return response.ok && response.type === 'basic'
    && !/no-store/i.test(response.headers.get('cache-control') || '');
}

// A display page comes in the visitor's language (the picker's cookie, else
// Accept-Language: web/i18n.py), so the cache keeps one copy per URL and language (the
// response's Content-Language), and remembers which language each preference got: a
// visitor whose browser language changed is not handed the old language's copy.
const LANG_COOKIE = 'hb_lang';
const variantKey = (url, lang) => {
  const key = new URL(url);
  key.searchParams.set('sw-lang', lang);
  return key.href;
};
const preferenceKey = (url, preference) => {
  const key = new URL(url);
  key.searchParams.set('sw-pref', preference);
  return key.href;
};

async function chosenLanguage() {
  try {
    return (await self.cookieStore?.get(LANG_COOKIE))?.value || '';
  } catch {
    return '';
  }
}

// What a request asks for: the cookie and the Accept-Language it carries (or, when the
// browser adds that header past the worker, the languages the browser would send).
async function preference(request) {
  const chosen = await chosenLanguage();
  const accept = (request && request.headers.get('accept-language'))
    || (self.navigator.languages || []).join(',');
  return { chosen, accept: accept.toLowerCase(), key: `${chosen}|${accept.toLowerCase()}` };
}

async function fetchPage(request, wanted) {
  const response = await fetch(request, { cache: 'no-store' });
  if (cacheablePage(response)) {
    const lang = (response.headers.get('content-language') || 'und').toLowerCase();
    const cache = await caches.open(PAGES);
    await cache.put(variantKey(request.url, lang), response.clone());
    if (wanted) await cache.put(preferenceKey(request.url, wanted.key), new Response(lang));
  }
  return response;
}

// Offline and never asked this way before: the kept copy in the language asked for (the
// cookie, then Accept-Language's tags, then their primary subtags), else any kept copy.
async function bestKept(cache, url, wanted) {
  const base = new URL(url);
  const kept = new Map();
  for (const req of await cache.keys()) {
    const key = new URL(req.url);
    const lang = key.searchParams.get('sw-lang');
    if (key.pathname !== base.pathname || !lang) continue;
    key.searchParams.delete('sw-lang');
    if (key.search === base.search) kept.set(lang, req);
  }
  if (!kept.size) return undefined;
  const tags = [wanted.chosen, ...wanted.accept.split(',').map((t) => t.split(';')[0].trim())]
    .filter(Boolean);
  const order = [...tags, ...tags.map((t) => t.split('-')[0])];
  const lang = order.find((t) => kept.has(t)) || [...kept.keys()].pop();
  return cache.match(kept.get(lang));
}

// Display pages: the copy a visitor already has in the language asked for first (no wait
// on patchy Wi-Fi; the stream brings the state up to date), the network otherwise.
registerRoute(({ request, url }) => request.mode === 'navigate'
  && url.origin === self.location.origin && DISPLAY_PAGE.test(url.pathname)
  && !url.searchParams.has('preview') && !url.searchParams.has('link'),
async ({ request }) => {
  const cache = await caches.open(PAGES);
  const wanted = await preference(request);
  const lang = await (await cache.match(preferenceKey(request.url, wanted.key)))?.text();
  const cached = lang && await cache.match(variantKey(request.url, lang));
  if (cached) return cached;
  try {
    return await fetchPage(request, wanted);
  } catch (err) {
    const kept = await bestKept(cache, request.url, wanted);
    if (kept) return kept;
    throw err;
  }
});

const immutable = (name, maxEntries) => new CacheFirst({
  cacheName: name,
  plugins: [
    new CacheableResponsePlugin({ statuses: [200] }),
    new ExpirationPlugin({ maxEntries, purgeOnQuotaError: true }),
  ],
});

// Models, textures and images: content-addressed, so a cached copy is always right.
registerRoute(({ url, request }) => url.origin === self.location.origin
  && url.pathname.startsWith('/assets/') && request.method === 'GET'
  && !request.headers.has('range'), immutable(MODELS, 300));

// The rest of the client build (fallback fonts for other scripts, loaded when a text
// needs them) and the page's own images (icon, the AR badge).
const PAGE_IMAGES = new Set(['/favicon.svg', '/ar-button.svg']);
registerRoute(({ url }) => url.origin === self.location.origin
  && (url.pathname.startsWith('/client/') || PAGE_IMAGES.has(url.pathname)),
immutable(CLIENT, 120));

// Files the page loaded before this worker controlled it (its first visit): kept like the
// ones fetched through the worker. Only this site's models and client files.
async function keepUrls(urls) {
  const models = await caches.open(MODELS);
  const client = await caches.open(CLIENT);
  const precached = await caches.keys().then((names) => names.find((n) => n.includes('precache')));
  const precache = precached ? await caches.open(precached) : null;
  for (const raw of urls.slice(0, 200)) {
    const url = new URL(raw, self.location.origin);
    if (url.origin !== self.location.origin) continue;
    const cache = url.pathname.startsWith('/assets/') ? models
      : url.pathname.startsWith('/client/') || PAGE_IMAGES.has(url.pathname) ? client : null;
    if (!cache || await cache.match(url.href)) continue;
    if (precache && await precache.match(url.href, { ignoreSearch: true })) continue;
    try {
      const response = await fetch(url.href);
      if (response.status === 200) await cache.put(url.href, response);
    } catch {
      // offline again: next visit
    }
  }
}

// The page has drawn: fetch a fresh copy of it for next time (after the first frame, so a
// warm visit makes no request before it draws), and keep what it loaded without us.
self.addEventListener('message', (event) => {
  const data = event.data || {};
  if (data.type === 'cache-urls' && Array.isArray(data.urls)) {
    event.waitUntil(keepUrls(data.urls.filter((u) => typeof u === 'string')));
    return;
  }
  if (data.type !== 'refresh-page' || typeof data.url !== 'string') return;
  const url = new URL(data.url, self.location.origin);
  if (url.origin !== self.location.origin || !DISPLAY_PAGE.test(url.pathname)
    || url.searchParams.has('preview')) return;
  // Kept under the language the server answers in (a picker's switch sends this too).
  event.waitUntil(fetchPage(new Request(url.href, { credentials: 'same-origin' }))
    .catch(() => {}));
});
