// The language picker on the display page: switches live, without a reload. The new
// language's messages come from /i18n/<lang>.json (the server's catalogue), the stream
// follows the display's channel in that language (market/<m>/display/<d>?lang=<l> when the
// market's content is offered in it, else the default channel), and the parts of the page
// the server rendered from content (the stall's story, farm, recipes) are taken from the
// page fetched again in the new language. The choice is remembered in a cookie.
import { fetchCatalogue, rememberLanguage, setLanguage, translatePage } from './i18n.js';

export function languageChannel(boot, lang) {
  const base = boot.base_channel || boot.channel;
  return (boot.content_languages || []).includes(lang) ? `${base}?lang=${lang}` : base;
}

export function attachLanguagePicker({ boot, stream, page, hook, onChannel = () => {} }) {
  const select = document.getElementById('lang-select');
  if (!select || boot.token) return; // a curator's draft preview stays on its channel
  document.documentElement.classList.add('live-language'); // no "Change" button needed
  hook.language = boot.i18n?.lang ?? document.documentElement.lang;
  let wanted = null;
  select.addEventListener('change', async () => {
    const lang = select.value;
    wanted = lang;
    rememberLanguage(lang);
    try {
      const catalogue = await fetchCatalogue(lang);
      if (wanted !== lang) return; // the visitor picked again meanwhile
      setLanguage(catalogue);
      translatePage();
      page.heard = null; // a new language is not a price change to announce
      const next = languageChannel(boot, lang);
      if (next !== boot.channel) {
        const old = boot.channel;
        boot.channel = next;
        onChannel(next);
        stream.follow(old, next); // its snapshot re-renders the scene and the list
      } else {
        const state = stream.channels.get(boot.channel)?.state;
        if (state) page.render(state);
      }
      await swapContent();
      hook.language = lang;
    } catch (err) {
      hook.warnings?.push(`language switch failed: ${err}`);
      location.reload(); // the cookie is set: the page comes back in the language
    }
  });
}

// The server-rendered content sections of the page, again in the new language. The page
// is also what an offline visit shows (the service worker's copy, sw.js): that copy is
// replaced by this one, so a reload comes back in the language chosen.
async function swapContent() {
  const res = await fetch(location.href, { credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) return;
  replaceCachedPage();
  const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
  for (const id of ['about', 'market-name']) {
    const mine = document.getElementById(id);
    const theirs = doc.getElementById(id);
    if (mine && theirs) mine.replaceChildren(...[...theirs.childNodes].map((n) => document.importNode(n, true)));
  }
  for (const el of doc.querySelectorAll('[aria-label][id]')) {
    document.getElementById(el.id)?.setAttribute('aria-label', el.getAttribute('aria-label'));
  }
}

// The service worker keeps a copy per language (sw.js): it fetches the page again itself,
// with the cookie now set, and keeps it under the language the server answers in.
function replaceCachedPage() {
  navigator.serviceWorker?.controller?.postMessage({ type: 'refresh-page', url: location.href });
}
