// The page's language on the client: `t()` over the same gettext catalogue as the server's
// pages (server/holobazaar/locale/<lang>/LC_MESSAGES/messages.po, sent as JSON in the boot
// data and by /i18n/<lang>.json), and numbers and prices formatted per locale with Intl.
// docs/client.md, Languages.

let current = { lang: document.documentElement.lang || 'en', dir: 'ltr', messages: {} };

export function setLanguage(catalogue) {
  if (!catalogue || typeof catalogue.lang !== 'string') return;
  current = {
    lang: catalogue.lang,
    dir: catalogue.dir === 'rtl' ? 'rtl' : 'ltr',
    messages: catalogue.messages && typeof catalogue.messages === 'object' ? catalogue.messages : {},
  };
}

export function language() {
  return current.lang;
}

// t('Loading models %(done)s/%(total)s', {done: 1, total: 3}): the message in the page's
// language (English, the source, when it has no translation), with Python-style named
// placeholders as in the .po file.
export function t(message, values = null) {
  let text = current.messages[message];
  if (Array.isArray(text)) text = text[0];
  if (typeof text !== 'string' || !text) text = message;
  if (!values) return text;
  return text.replace(/%\((\w+)\)s/g, (all, name) => (name in values ? String(values[name]) : all));
}

// Latin digits in every language, as the server's Babel formatting (i18n.format_money).
const numbering = { numberingSystem: 'latn' };
const formats = new Map();
function formatter(kind, currency, decimals = 0) {
  const key = `${current.lang}|${kind}|${currency}|${decimals}`;
  let found = formats.get(key);
  if (!found) {
    const options = kind === 'money' ? { ...numbering, style: 'currency', currency } : numbering;
    found = new Intl.NumberFormat(current.lang, options);
    // Never round a price: 10.51 JPY is ¥10.51, not the ¥11 of whole yen (as the server's
    // Babel formatting, i18n.format_money).
    if (decimals > found.resolvedOptions().maximumFractionDigits) {
      found = new Intl.NumberFormat(current.lang, {
        ...options, minimumFractionDigits: decimals, maximumFractionDigits: decimals });
    }
    formats.set(key, found);
  }
  return found;
}

function decimalsOf(price) {
  const match = /\.(\d+)$/.exec(String(price));
  return match ? Math.min(match[1].length, 20) : 0;
}

// "2.70", "EUR" -> "€ 2,70" in Dutch, "€2.70" in English. Prices travel as decimal
// strings; Intl formats the number they spell.
export function formatMoney(price, currency) {
  const amount = Number(price);
  if (!Number.isFinite(amount)) return String(price);
  if (!currency) return formatter('number', '', decimalsOf(price)).format(amount);
  try {
    return formatter('money', currency, decimalsOf(price)).format(amount);
  } catch {
    return `${price} ${currency}`; // not an ISO 4217 code Intl knows
  }
}

export function formatNumber(value) {
  return formatter('number', '').format(value);
}

export function formatTime(ms, timeZone) {
  try {
    return new Intl.DateTimeFormat(current.lang, { ...numbering, hour: '2-digit', minute: '2-digit', timeZone })
      .format(new Date(ms));
  } catch {
    return new Intl.DateTimeFormat(current.lang, { hour: '2-digit', minute: '2-digit' }).format(new Date(ms));
  }
}

// The page's static texts marked data-i18n="<English message>" (and the placeholders
// marked data-i18n-placeholder) in the current language: after a live switch.
export function translatePage(root = document) {
  document.documentElement.lang = current.lang;
  document.documentElement.dir = current.dir;
  for (const el of root.querySelectorAll('[data-i18n]')) {
    const text = t(el.dataset.i18n);
    if (el.textContent !== text) el.textContent = text;
  }
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) {
    el.setAttribute('placeholder', t(el.dataset.i18nPlaceholder));
  }
}

const COOKIE = 'hb_lang';

export function rememberLanguage(lang) {
  document.cookie = `${COOKIE}=${encodeURIComponent(lang)}; path=/; max-age=31536000; samesite=lax`;
}

export async function fetchCatalogue(lang) {
  const res = await fetch(`/i18n/${encodeURIComponent(lang)}.json`);
  if (!res.ok) throw new Error(`no catalogue for ${lang} (${res.status})`);
  return res.json();
}
