"""Stored (uploaded and processed) assets: one row per market upload (its own name, market
and uploader), one per output file. Outputs are stored by content hash, so the same input
uploaded to two markets is two records sharing the same files."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, String
from sqlmodel import Field, SQLModel

AssetStatus = Literal["queued", "processing", "ready", "failed"]


class StoredAsset(SQLModel, table=True):
    __tablename__ = "stored_asset"

    # sha256 of (source, market, name): the same upload to the same market under the
    # same name is this record again; any other is a record of its own.
    id: str = Field(primary_key=True, max_length=64)
    # sha256 of the input (every file's name and content hash) and its processing options:
    # records with the same source share one processing and its stored files.
    source: str = Field(max_length=64, index=True)
    market: str | None = Field(default=None, max_length=64, index=True)
    name: str = Field(max_length=64)
    uploaded_by: str | None = Field(default=None, max_length=160)
    source_name: str = Field(max_length=255)
    kind: str = Field(max_length=16)  # model | image
    status: str = Field(max_length=16, index=True)
    error: str | None = None
    input_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    output_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    triangles: int = 0
    processing_ms: int = 0
    bbox: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    warnings: list[dict[str, Any]] = Field(default_factory=list,
                                           sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    # A queued upload's job (assets/jobs.py): its input files in the asset store and the
    # curator's options. The node processing it holds it until `lease_until` (renewed while
    # it works); `attempts` counts the claims and fences a lost claim's late writes.
    job: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    claimed_by: str | None = Field(default=None, max_length=160)
    lease_until: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    attempts: int = 0


class StoredAssetFile(SQLModel, table=True):
    __tablename__ = "stored_asset_file"

    asset_id: str = Field(sa_column=Column(String(64), ForeignKey(
        "stored_asset.id", ondelete="CASCADE"), primary_key=True))
    role: str = Field(primary_key=True, max_length=16)
    sha256: str = Field(max_length=64, index=True)
    ext: str = Field(max_length=8)
    media_type: str = Field(max_length=64)
    bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    triangles: int = 0


class AssetFileOut(BaseModel):
    role: str
    url: str
    media_type: str
    bytes: int
    triangles: int


class AssetOut(BaseModel):
    """What the API reports about one asset (its processing status and, when ready, files)."""

    id: str
    market: str | None
    name: str
    source_name: str
    kind: str
    status: AssetStatus
    error: str | None
    input_bytes: int
    output_bytes: int
    triangles: int
    processing_ms: int
    bbox: dict[str, Any] | None
    warnings: list[dict[str, Any]]
    files: list[AssetFileOut]
