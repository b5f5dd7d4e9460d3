// Captions of show audio cues (docs/shows.md, `caption` and its `translations`): no
// imports, so Node runs it in tests (tests/web/test_client_offline_logic.py).

// An audio cue's caption in the page's language (docs/shows.md, `translations`), else as
// written; the language picker's switch shows in the next frame.
export function captionIn(action, lang) {
  const translated = action.translations?.[lang]?.caption;
  if (typeof translated === 'string' && translated) return translated;
  return typeof action.caption === 'string' && action.caption ? action.caption : null;
}
