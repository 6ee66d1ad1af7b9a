"""Search indexes: the embedded SQLite index (OpenSearch/Elasticsearch later)."""

from __future__ import annotations

from pathlib import Path

from imagedex.errors import ConfigError
from imagedex.index.base import SearchIndex
from imagedex.index.sqlite import SqliteIndex

__all__ = ["SearchIndex", "SqliteIndex", "open_index"]


def open_index(url: str, data_dir: Path) -> SearchIndex:
    """`sqlite` (the default, in the data dir) or `sqlite:///path/to/index.db`."""
    if url in ("", "sqlite"):
        return SqliteIndex(data_dir / "index.sqlite3")
    if url.startswith("sqlite:///"):
        return SqliteIndex(Path(url.removeprefix("sqlite://")))
    raise ConfigError(f"unsupported index URL {url!r}; use 'sqlite'")
