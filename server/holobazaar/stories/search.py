"""Full-text search over published stories and recipes with the database's own index:
SQLite FTS5 (bm25, Porter stemming) or PostgreSQL tsvector (ts_rank with the title weighted
highest, english config).

The visitor's query is never handed to the index's query language: it is cut into words
and every word must match (the last one as a prefix, for search-as-you-type)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from holobazaar.stories.schema import diet_name

# Private-use characters mark highlights inside the database; the snippet is escaped as
# text first and only then are they turned into <mark> tags.
START, STOP = "\ue000", "\ue001"
MAX_WORDS = 12
_WORD = re.compile(r"\w+", re.UNICODE)


class SearchError(ValueError):
    pass


@dataclass(frozen=True)
class Filters:
    market: str | None = None
    kind: str | None = None
    tag: str | None = None
    producer: str | None = None
    diet: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Hit:
    kind: str
    slug: str
    market: str
    title: str
    language: str
    score: float
    snippet: str

    def as_json(self) -> dict[str, Any]:
        plain = self.snippet.replace(START, "").replace(STOP, "")
        marked = html.escape(self.snippet, quote=False).replace(START, "<mark>").replace(
            STOP, "</mark>")
        return {"kind": self.kind, "slug": self.slug, "market": self.market,
                "title": self.title, "language": self.language,
                "score": round(self.score, 6), "snippet": plain, "snippet_html": marked,
                "url": f"/s/{self.slug}" if self.kind == "story" else f"/r/{self.slug}"}


def words(query: str) -> list[str]:
    found = [w.lower() for w in _WORD.findall(query)]
    if not found:
        raise SearchError("q: give at least one word to search for")
    if len(found) > MAX_WORDS:
        raise SearchError(f"q: at most {MAX_WORDS} words")
    return found


def _filters(filters: Filters, params: dict[str, Any]) -> str:
    clauses = []
    for column, value in (("market", filters.market), ("kind", filters.kind),
                          ("language", filters.language)):
        if value is not None:
            clauses.append(f"d.{column} = :{column}")
            params[column] = value
    for column, value in (("tag_list", filters.tag), ("producer_list", filters.producer),
                          ("diet_list", diet_name(filters.diet) if filters.diet else None)):
        if value is not None:
            clauses.append(f"d.{column} LIKE :{column}")
            params[column] = f"%|{value}|%"
    return "".join(f" AND {c}" for c in clauses)


def search(engine: Engine, query: str, filters: Filters | None = None, *, limit: int = 20,
           offset: int = 0) -> list[Hit]:
    """Ranked hits, best first, with a highlighted snippet each."""
    terms = words(query)
    filters = filters or Filters()
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    where = _filters(filters, params)
    # Two steps in one statement: rank every match but cut to the page first, then make
    # snippets only for that page (a snippet costs far more than a rank).
    if engine.dialect.name == "postgresql":
        params["q"] = " & ".join([*terms[:-1], f"{terms[-1]}:*"])
        sql = f"""
            WITH query AS (SELECT to_tsquery('english', :q) AS q),
            top AS (
                SELECT d.id, ts_rank(ARRAY[0.02, 0.05, 0.3, 1.0]::float4[], d.tsv, query.q)
                       AS score
                FROM search_doc d, query WHERE d.tsv @@ query.q{where}
                ORDER BY score DESC, d.slug LIMIT :limit OFFSET :offset)
            SELECT d.kind, d.slug, d.market, d.title, d.language, top.score,
                   ts_headline('english', d.title || ' — ' || d.body, query.q,
                       'StartSel={START}, StopSel={STOP}, MaxWords=28, MinWords=12,
                        MaxFragments=2, FragmentDelimiter=" … "') AS snip
            FROM top JOIN search_doc d ON d.id = top.id, query
            ORDER BY top.score DESC, d.slug"""
    else:
        params["q"] = " ".join([*(f'"{t}"' for t in terms[:-1]), f'"{terms[-1]}"*'])
        # bm25 weights: a word in the title counts most, then tags, then the body.
        # Without filters the ranking reads the FTS index alone (no join per match).
        ranked = f"""
                SELECT d.id, -bm25(search_fts, 25.0, 1.0, 5.0) AS score
                FROM search_fts JOIN search_doc d ON d.id = search_fts.rowid
                WHERE search_fts MATCH :q{where}
                ORDER BY score DESC, d.slug""" if where else """
                SELECT rowid AS id, -bm25(search_fts, 25.0, 1.0, 5.0) AS score
                FROM search_fts WHERE search_fts MATCH :q
                ORDER BY score DESC, rowid"""
        sql = f"""
            WITH top AS ({ranked} LIMIT :limit OFFSET :offset)
            SELECT d.kind, d.slug, d.market, d.title, d.language, top.score,
                   snippet(search_fts, -1, '{START}', '{STOP}', ' … ', 24) AS snip
            FROM top JOIN search_fts ON search_fts.rowid = top.id
                     JOIN search_doc d ON d.id = top.id
            WHERE search_fts MATCH :q
            ORDER BY top.score DESC, d.slug"""
    with engine.connect() as connection:
        rows = connection.execute(text(sql), params).all()
    return [Hit(r.kind, r.slug, r.market, r.title, r.language, float(r.score), r.snip or "")
            for r in rows]
