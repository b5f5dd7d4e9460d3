"""Log output: plain text (the default) or one JSON object per line
(`HOLOBAZAAR_LOG_FORMAT=json`, `serve --log-format json`) for an operator's log system.

Every record becomes one line with `time` (UTC, ISO 8601), `level`, `logger`, `message`
and the record's extra fields (`request_id`, `route`, `status`, … on request lines; see
docs/deploy.md, "Logs"); a traceback, when one is logged, is the `traceback` field of
the same line. Records logged while a request is served carry its `request_id` (a
context variable the edge middleware sets, holobazaar.edges)."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The request being served on this task (None outside requests).
request_id: ContextVar[str | None] = ContextVar("holobazaar_request_id", default=None)

# Attributes every LogRecord has: everything else on a record is an extra field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            current = request_id.get()
            if current is not None:
                record.request_id = current
        return True


def configure(level: str = "info", fmt: LogFormat = "text") -> None:
    """The process's log output: one handler on the root logger, writing to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_RequestIdFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def uvicorn_options(fmt: LogFormat) -> dict[str, Any]:
    """What uvicorn.run needs for the format: with JSON its loggers go through the root
    handler above, and the edge middleware's request line replaces its access line."""
    if fmt == "json":
        return {"log_config": None, "access_log": False}
    return {}
