// The pager of a paged portrait column (layout.js paginate): "‹ 1 / 3 ›" over the view's top
// left corner. Shown only when the display needs more than one page; the keyboard reaches
// it (real buttons), and the page count is announced politely.
export function attachPager({ stage, onPage }) {
  const nav = document.createElement('nav');
  nav.id = 'view-pager';
  nav.setAttribute('aria-label', 'Pages of the 3D view');
  nav.hidden = true;
  const prev = document.createElement('button');
  prev.type = 'button';
  prev.textContent = '\u2039';
  prev.setAttribute('aria-label', 'Previous page');
  const label = document.createElement('span');
  label.setAttribute('aria-live', 'polite');
  const next = document.createElement('button');
  next.type = 'button';
  next.textContent = '\u203a';
  next.setAttribute('aria-label', 'Next page');
  nav.append(prev, label, next);
  stage.append(nav);
  let current = { page: 0, pages: 1 };
  prev.addEventListener('click', () => onPage(current.page - 1));
  next.addEventListener('click', () => onPage(current.page + 1));
  return {
    update({ page, pages }) {
      current = { page, pages };
      nav.hidden = pages <= 1;
      stage.classList.toggle('paged', pages > 1);
      label.textContent = `${page + 1} / ${pages}`;
      prev.disabled = page <= 0;
      next.disabled = page >= pages - 1;
    },
  };
}
