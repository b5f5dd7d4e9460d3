"""Documents and calls shared by the story tests."""

from __future__ import annotations

from typing import Any

import httpx

MARKET = "greenhaven"


def story(slug: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "story", "slug": slug, "title": f"Story {slug}",
            "body": "A grower's *story*.", "producers": ["zonneveld"], **extra}


def recipe(slug: str, skus: list[str], **extra: Any) -> dict[str, Any]:
    return {"kind": "recipe", "slug": slug, "name": f"Recipe {slug}",
            "ingredients": [{"text": f"some {s}", "sku": s} for s in skus] + ["salt"],
            "instructions": ["Cook it."], **extra}


def publish(client: httpx.Client, headers: dict, collection: str, slug: str) -> dict:
    base = f"/api/v1/markets/{MARKET}/{collection}/{slug}"
    response = client.post(f"{base}/status", json={"status": "review"}, headers=headers)
    assert response.status_code == 200, response.text
    response = client.post(f"{base}/publish", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()
