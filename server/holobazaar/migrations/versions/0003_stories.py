"""stories and recipes: producers, documents, beats, ingredients, revisions, search index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _document_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(100), nullable=False, unique=True),
        sa.Column("market", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("moderation", sa.String(16), nullable=True),
        sa.Column("moderation_reason", sa.String(300), nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("doc", sa.JSON, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("published_at", nullable=True),
    )


# Search (SQLite): an external-content FTS5 table over search_doc, kept in step by
# triggers, with the Porter stemmer so "tomatoes" finds "tomato".
SQLITE_FTS = [
    """CREATE VIRTUAL TABLE search_fts USING fts5(
        title, body, tags, content='search_doc', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER search_doc_ai AFTER INSERT ON search_doc BEGIN
        INSERT INTO search_fts(rowid, title, body, tags)
        VALUES (new.id, new.title, new.body, new.tags); END""",
    """CREATE TRIGGER search_doc_ad AFTER DELETE ON search_doc BEGIN
        INSERT INTO search_fts(search_fts, rowid, title, body, tags)
        VALUES ('delete', old.id, old.title, old.body, old.tags); END""",
    """CREATE TRIGGER search_doc_au AFTER UPDATE ON search_doc BEGIN
        INSERT INTO search_fts(search_fts, rowid, title, body, tags)
        VALUES ('delete', old.id, old.title, old.body, old.tags);
        INSERT INTO search_fts(rowid, title, body, tags)
        VALUES (new.id, new.title, new.body, new.tags); END""",
]
# Search (PostgreSQL): a weighted tsvector the database computes itself, GIN-indexed.
POSTGRES_TSV = [
    """ALTER TABLE search_doc ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
        setweight(to_tsvector('english', coalesce(tags, '')), 'B') ||
        setweight(to_tsvector('english', coalesce(body, '')), 'C')) STORED""",
    "CREATE INDEX search_doc_tsv ON search_doc USING GIN (tsv)",
    # Ranking reads the tsvector of every match: kept compressed in the row (MAIN) rather
    # than out of line, a common query is about 3x faster (bench/search.py).
    "ALTER TABLE search_doc ALTER COLUMN tsv SET STORAGE MAIN",
]


def upgrade() -> None:
    op.create_table(
        "producer",
        sa.Column("market", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
    )
    _document_table("story")
    _document_table("recipe")
    op.create_table(
        "story_beat",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("story_id", sa.Integer, sa.ForeignKey("story.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("media", sa.String(500), nullable=True),
        sa.Column("model", sa.String(500), nullable=True),
        sa.Column("duration", sa.Float, nullable=False),
    )
    op.create_table(
        "recipe_ingredient",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("recipe_id", sa.Integer, sa.ForeignKey("recipe.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.String(300), nullable=False),
        sa.Column("sku", sa.String(64), nullable=True, index=True),
    )
    op.create_table(
        "content_revision",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("slug", sa.String(100), nullable=False, index=True),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        _ts("at"),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
        sa.UniqueConstraint("kind", "slug", "number"),
    )
    op.create_table(
        "search_doc",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("market", sa.String(64), nullable=False, index=True),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("tag_list", sa.Text, nullable=False),
        sa.Column("producer_list", sa.Text, nullable=False),
        sa.Column("diet_list", sa.Text, nullable=False),
        _ts("published_at", nullable=True),
        sa.UniqueConstraint("kind", "slug"),
    )
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_FTS, "postgresql": POSTGRES_TSV}.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_fts")
    for table in ("search_doc", "content_revision", "recipe_ingredient", "story_beat",
                  "recipe", "story", "producer"):
        op.drop_table(table)
