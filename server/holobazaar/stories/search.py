"""Full-text search over published stories and recipes with the database's own index:
SQLite FTS5 (bm25, Porter stemming) or PostgreSQL tsvector (ts_rank_cd, english config).

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
    if engine.dialect.name == "postgresql":
        params["q"] = " & ".join([*terms[:-1], f"{terms[-1]}:*"])
        sql = f"""
            SELECT d.kind, d.slug, d.market, d.title, d.language,
                   ts_rank_cd(d.tsv, query) AS score,
                   ts_headline('english', d.title || ' — ' || d.body, query,
                       'StartSel={START}, StopSel={STOP}, MaxWords=28, MinWords=12,
                        MaxFragments=2, FragmentDelimiter=" … "') AS snip
            FROM search_doc d, to_tsquery('english', :q) query
            WHERE d.tsv @@ query{where}
            ORDER BY score DESC, d.slug LIMIT :limit OFFSET :offset"""
    else:
        params["q"] = " ".join([*(f'"{t}"' for t in terms[:-1]), f'"{terms[-1]}"*'])
        # bm25 weights: a word in the title counts most, then tags, then the body.
        sql = f"""
            SELECT d.kind, d.slug, d.market, d.title, d.language,
                   -bm25(search_fts, 25.0, 1.0, 5.0) AS score,
                   snippet(search_fts, -1, '{START}', '{STOP}', ' … ', 24) AS snip
            FROM search_fts JOIN search_doc d ON d.id = search_fts.rowid
            WHERE search_fts MATCH :q{where}
            ORDER BY score DESC, d.slug LIMIT :limit OFFSET :offset"""
    with engine.connect() as connection:
        rows = connection.execute(text(sql), params).all()
    return [Hit(r.kind, r.slug, r.market, r.title, r.language, float(r.score), r.snip or "")
            for r in rows]
