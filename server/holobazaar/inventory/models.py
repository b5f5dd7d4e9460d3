"""Inventory tables and the API's request/response shapes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import BigInteger, Column, DateTime, Numeric
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

StockStatus = Literal["in_stock", "low", "sold_out"]


class InventoryItem(SQLModel, table=True):
    __tablename__ = "inventory_item"

    market: str = SQLField(primary_key=True, max_length=64)
    sku: str = SQLField(primary_key=True, max_length=64)
    name: str = SQLField(max_length=120)
    price: Decimal = SQLField(sa_column=Column(Numeric(14, 4), nullable=False))
    currency: str = SQLField(max_length=3)
    unit: str = SQLField(max_length=20)
    stock: int | None = None
    status: str = SQLField(max_length=16)
    farm: str | None = SQLField(default=None, max_length=64)
    source: str = SQLField(max_length=32)
    updated_at: datetime = SQLField(sa_column=Column(DateTime(timezone=True), nullable=False))
    # The feed's own version and time of this row: an event older than what is stored is
    # ignored, so events arriving out of order never move an item backwards.
    source_version: int = SQLField(default=0, sa_column=Column(BigInteger, nullable=False,
                                                               server_default="0"))
    source_timestamp: datetime | None = SQLField(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


def not_a_boolean(value: object) -> object:
    """JSON true/false where a number is expected is a mistake, not 1/0 (pydantic's lax
    mode would take it): shared by manual edits and feed events."""
    if isinstance(value, bool):
        raise ValueError("a whole number is expected, not true or false")
    return value


def unsigned_zero(value: Decimal | None) -> Decimal | None:
    """"-0" is stored and shown as 0, never "-0.00"."""
    return value.copy_abs() if value is not None and value.is_zero() else value


class ItemUpdate(BaseModel):
    """A partial change to one item; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=120)
    price: Decimal | None = Field(None, ge=0, le=Decimal("1000000"), allow_inf_nan=False,
                                  decimal_places=4)
    unit: str | None = Field(None, min_length=1, max_length=20)
    stock: int | None = Field(None, ge=0, le=10_000_000)
    status: StockStatus | None = None
    # Confirms a price change beyond the hold policy (HOLOBAZAAR_HOLD_PRICE_CHANGE);
    # without it such a change is refused with 409 (docs/inventory.md, "Manual changes").
    confirm: bool = Field(False, strict=True)

    _stock_not_a_boolean = field_validator("stock", mode="before")(not_a_boolean)
    _price_unsigned_zero = field_validator("price", mode="after")(unsigned_zero)


class ItemCreate(BaseModel):
    """A new item (a curator adds it by hand): SKU, name and price are required."""

    model_config = ConfigDict(extra="forbid")

    sku: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                     description="Letters, digits, '.', '_' and '-'; at most 64.")
    name: str = Field(min_length=1, max_length=120)
    price: Decimal = Field(ge=0, le=Decimal("1000000"), allow_inf_nan=False,
                           decimal_places=4)
    unit: str = Field("each", min_length=1, max_length=20)
    stock: int | None = Field(None, ge=0, le=10_000_000)
    status: StockStatus | None = None
    farm: str | None = Field(None, min_length=1, max_length=64,
                             description="The producer (farm) id.")

    _stock_not_a_boolean = field_validator("stock", mode="before")(not_a_boolean)
    _price_unsigned_zero = field_validator("price", mode="after")(unsigned_zero)

    @field_validator("name", "unit", "farm", mode="before")
    @classmethod
    def _trimmed(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value


class ItemOut(BaseModel):
    sku: str
    name: str
    price: str
    currency: str
    unit: str
    stock: int | None
    status: StockStatus
    farm: str | None
