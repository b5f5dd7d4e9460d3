"""Studio section: truth (see shell.py for access and navigation)."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
