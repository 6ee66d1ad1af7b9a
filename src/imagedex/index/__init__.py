"""Search indexes: the embedded SQLite index, OpenSearch and Elasticsearch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from imagedex.errors import ConfigError
from imagedex.index.base import SearchIndex
from imagedex.index.sqlite import SqliteIndex

if TYPE_CHECKING:
    from imagedex.config import Settings

__all__ = ["SearchIndex", "SqliteIndex", "open_index"]

ENGINE_SCHEMES = (
    "opensearch+http",
    "opensearch+https",
    "elasticsearch+http",
    "elasticsearch+https",
)


def open_index(url: str, data_dir: Path, settings: Settings | None = None) -> SearchIndex:
    """`sqlite` (default, in the data dir), `sqlite:///path/index.db`, or
    `opensearch+http(s)://host:9200/alias` / `elasticsearch+http(s)://host:9200/alias`."""
    if url in ("", "sqlite"):
        return SqliteIndex(data_dir / "index.sqlite3")
    if url.startswith("sqlite:///"):
        return SqliteIndex(Path(url.removeprefix("sqlite://")))
    parsed = urlparse(url)
    if parsed.scheme in ENGINE_SCHEMES:
        return _open_engine(url, settings)
    raise ConfigError(
        f"unsupported index URL {url!r}; use 'sqlite' or opensearch+http://host:9200/index"
    )


def _open_engine(url: str, settings: Settings | None) -> SearchIndex:
    from imagedex.config import Settings
    from imagedex.index.engine import EngineIndex
    from imagedex.index.engine_client import EngineAuth, EngineClient

    settings = settings or Settings()
    parsed = urlparse(url)
    flavor, _, scheme = parsed.scheme.partition("+")
    alias = parsed.path.strip("/") or "images"
    if "/" in alias:
        raise ConfigError(f"index URL {url!r}: the path must be one index/alias name")
    host = parsed.hostname or "localhost"
    port = f":{parsed.port}" if parsed.port else ""
    auth = EngineAuth(
        username=unquote(parsed.username or "") or settings.index_username,
        password=unquote(parsed.password or "") or settings.index_password,
        api_key=settings.index_api_key,
        sigv4_service=settings.index_sigv4_service,
        verify_tls=settings.index_verify_tls,
        ca_file=settings.index_ca_file,
    )
    client = EngineClient(f"{scheme}://{host}{port}", auth)
    return EngineIndex(
        client,
        alias,
        flavor="elasticsearch" if flavor == "elasticsearch" else "opensearch",
        refresh=settings.index_refresh,
        replicas=settings.index_replicas,
    )
