"""Search indexes: the embedded SQLite index, OpenSearch and Elasticsearch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse, urlsplit

from imagedex.errors import ConfigError
from imagedex.index.base import SearchIndex
from imagedex.index.sqlite import SqliteIndex
from imagedex.index.sqlite_columns import DEFAULT_CAP_MB
from imagedex.people.store import PeopleResolver
from imagedex.registry import Registry

if TYPE_CHECKING:
    from imagedex.config import Settings

__all__ = ["INDEXES", "IndexOpener", "SearchIndex", "SqliteIndex", "open_index"]

#: Opens the index a URL names: (url, data dir, settings) -> index.
IndexOpener = Callable[[str, Path, "Settings | None"], SearchIndex]
_DEFAULT = ("", "sqlite")


def _unsupported(url: str) -> ConfigError:
    return ConfigError(
        f"unsupported index URL {url!r}; use 'sqlite' or opensearch+http://host:9200/index"
    )


def open_sqlite(url: str, data_dir: Path, settings: Settings | None = None) -> SearchIndex:
    """`sqlite` (the data dir's index file) or `sqlite:///path/index.db`."""
    cap = DEFAULT_CAP_MB if settings is None else settings.index_facet_cache_mb
    if url in _DEFAULT:
        index = SqliteIndex(data_dir / "index.sqlite3", facet_cache_mb=cap)
    elif url.startswith("sqlite:///"):
        index = SqliteIndex(Path(url.removeprefix("sqlite://")), facet_cache_mb=cap)
    else:
        raise _unsupported(url)
    index.resolve_person = PeopleResolver(data_dir)  # person:"Anna" finds Anna's images
    return index


#: Index openers by URL scheme (`sqlite` alone names the default index). Packages add
#: schemes through the `imagedex.indexes` entry point group.
INDEXES: Registry[IndexOpener] = Registry("index URL scheme", "imagedex.indexes")
INDEXES.register("sqlite", open_sqlite)
for _scheme in ("opensearch+http", "opensearch+https", "elasticsearch+http", "elasticsearch+https"):
    INDEXES.register(_scheme, "imagedex.index:open_engine")


def open_index(url: str, data_dir: Path, settings: Settings | None = None) -> SearchIndex:
    """`sqlite` (default, in the data dir), `sqlite:///path/index.db`, or
    `opensearch+http(s)://host:9200/alias` / `elasticsearch+http(s)://host:9200/alias`."""
    scheme = "sqlite" if url in _DEFAULT else urlparse(url).scheme
    if scheme not in INDEXES:
        raise _unsupported(url)
    return INDEXES.resolve(scheme)(url, data_dir, settings)


def engine_nodes(url: str) -> list[str]:
    """The `host[:port]` of each node an engine index URL lists: `opensearch+https://a:9200/x`
    names one, `opensearch+https://user:pw@a:9200,b:9200,c:9200/x` three (requests fail over
    from one to the next). Raises ValueError on a malformed host or port."""
    hosts = urlsplit(url).netloc.rpartition("@")[2]
    nodes = []
    for host in hosts.split(","):
        part = urlsplit(f"//{host.strip()}")
        if not part.hostname:
            raise ValueError(f"no host in {host.strip()!r}")
        bracketed = f"[{part.hostname}]" if ":" in part.hostname else part.hostname
        nodes.append(bracketed + (f":{part.port}" if part.port else ""))  # .port checks it
    return nodes


def open_engine(url: str, _data_dir: Path, settings: Settings | None = None) -> SearchIndex:
    """An OpenSearch or Elasticsearch index alias (`flavor+http(s)://host:port/alias`)."""
    from imagedex.config import Settings
    from imagedex.index.engine import EngineIndex
    from imagedex.index.engine_client import EngineAuth, EngineClient

    settings = settings or Settings()
    parsed = urlparse(url)
    flavor, _, scheme = parsed.scheme.partition("+")
    alias = parsed.path.strip("/") or "images"
    if "/" in alias:
        raise ConfigError(f"index URL {url!r}: the path must be one index/alias name")
    auth = EngineAuth(
        username=unquote(parsed.username or "") or settings.index_username,
        password=unquote(parsed.password or "") or settings.index_password,
        api_key=settings.index_api_key,
        sigv4_service=settings.index_sigv4_service,
        verify_tls=settings.index_verify_tls,
        ca_file=settings.index_ca_file,
    )
    client = EngineClient([f"{scheme}://{node}" for node in engine_nodes(url)], auth)
    index = EngineIndex(
        client,
        alias,
        flavor="elasticsearch" if flavor == "elasticsearch" else "opensearch",
        refresh=settings.index_refresh,
        replicas=settings.index_replicas,
    )
    index.resolve_person = PeopleResolver(_data_dir)  # person:"Anna", as on SQLite
    return index
