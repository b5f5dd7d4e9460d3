"""Search benchmark: 10,000 published stories and recipes in a fresh database, then the
latency of ranked, highlighted queries (with and without filters), p50/p99.

    .venv/bin/python bench/search.py [--docs 10000] [--repeat 200] [--postgres URL]

SQLite (FTS5) always; PostgreSQL (tsvector + GIN) too when --postgres or
HOLOBAZAAR_TEST_POSTGRES_URL gives a server (a throwaway database is created and dropped).
Documents are inserted straight into the search index (search_doc), as publishing does:
150-450 words each from a Zipf-distributed vocabulary of 8,000 words with the food words
of the demo making up about 8% of the text; titles are four food words."""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.engine import Engine

import benchlib  # noqa: F401  (puts tests/ on the path)
from holobazaar import db
from holobazaar.stories.models import SearchDoc
from holobazaar.stories.search import Filters, search

from support.databases import private_database

WORDS = [
    "tomato", "apple", "pear", "honey", "bee", "mushroom", "oyster", "shiitake", "bread",
    "rye", "spelt", "cheese", "gouda", "goat", "egg", "duck", "kale", "carrot", "beetroot",
    "pumpkin", "basil", "thyme", "mint", "rosemary", "seed", "bean", "borlotti", "calendula",
    "orchard", "polder", "tunnel", "harvest", "soil", "compost", "mulch", "market", "potluck",
    "neighbour", "grandmother", "heirloom", "season", "summer", "autumn", "winter", "spring",
    "soup", "salad", "cake", "roast", "stew", "toast", "jam", "jelly", "elderflower",
    "meadow", "stork", "sheep", "hen", "farm", "grower",
]
TAGS = ("heirloom", "potluck", "community", "seasonal", "summer", "autumn", "winter")
DIETS = ("VeganDiet", "VegetarianDiet", "GlutenFreeDiet")
QUERIES = [("tomato", Filters()), ("honey cake", Filters()), ("heirloom apple", Filters()),
           ("mush", Filters()), ("soup", Filters(kind="recipe", diet="vegan")),
           ("harvest", Filters(tag="potluck", producer="farm-7"))]


def vocabulary(rng: random.Random, size: int = 8000) -> list[str]:
    """Pronounceable filler words: real text has a long tail of words, so a query word
    matches a share of the documents, not all of them."""
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "bi", "da", "fe", "gu", "ho",
                 "ja", "ki", "le", "mo", "na", "pe", "ri", "so", "tu"]
    return ["".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(size)]


def fill(engine: Engine, count: int, seed: int = 7) -> float:
    rng = random.Random(seed)
    filler = vocabulary(rng)
    # Zipf-like weights over the filler words; the food words make up about 8% of a text.
    weights = [1 / (rank + 1) for rank in range(len(filler))]
    rows = []
    for n in range(count):
        kind = "recipe" if n % 2 else "story"
        length = rng.randint(150, 450)
        words = rng.choices(filler, weights, k=length)
        for index in rng.sample(range(length), length // 12):
            words[index] = rng.choice(WORDS)
        body = " ".join(words)
        tags = rng.sample(TAGS, 2)
        rows.append({
            "kind": kind, "slug": f"doc-{n}", "market": f"market-{n % 5}", "language": "en",
            "title": " ".join(rng.choices(WORDS, k=4)).capitalize(), "body": body,
            "tags": " ".join(tags), "tag_list": "|" + "|".join(tags) + "|",
            "producer_list": f"|farm-{n % 40}|",
            "diet_list": "|" + "|".join(rng.sample(DIETS, 1)) + "|" if kind == "recipe"
            else "||", "published_at": None})
    started = time.perf_counter()
    with engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            conn.execute(insert(SearchDoc), rows[start:start + 1000])
    return time.perf_counter() - started


def measure(name: str, engine: Engine, repeat: int) -> None:
    print(f"{name}: query latency over {repeat} runs each (ms)")
    print(f"  {'query':<30} {'hits':>5} {'p50':>8} {'p99':>8}")
    for query, filters in QUERIES:
        search(engine, query, filters)  # warm the page cache
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            hits = search(engine, query, filters, limit=20)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        label = query + (" +filters" if filters != Filters() else "")
        print(f"  {label:<30} {len(hits):>5} {statistics.median(times):>8.2f} {p99:>8.2f}")


def run(name: str, url: str, docs: int, repeat: int) -> None:
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        seconds = fill(engine, docs)
        print(f"{name}: indexed {docs} documents in {seconds:.1f} s")
        measure(name, engine, repeat)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--postgres", default=os.environ.get("HOLOBAZAAR_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run("sqlite", f"sqlite:///{Path(folder) / 'bench.db'}", args.docs, args.repeat)
    if args.postgres:
        with private_database(args.postgres, "bench") as url:
            run("postgresql", url, args.docs, args.repeat)


if __name__ == "__main__":
    main()
