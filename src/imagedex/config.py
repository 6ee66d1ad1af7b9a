"""One settings object, read from defaults < imagedex.toml < IMAGEDEX_* environment < CLI flags."""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from imagedex.errors import ConfigError

ENV_PREFIX = "IMAGEDEX_"
CONFIG_FILE_NAME = "imagedex.toml"


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/imagedex`, else `~/.local/share/imagedex`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "imagedex"


@dataclass(frozen=True)
class Settings:
    """Everything that selects a deployment and tunes the pipeline.

    `store`, `queue` and `index` are URLs (see DESIGN.md); empty means the embedded default
    inside `data_dir`.
    """

    data_dir: Path = field(default_factory=default_data_dir)
    store: str = ""
    queue: str = "sqlite"
    index: str = "sqlite"
    # queue semantics
    visibility_timeout: float = 60.0
    max_receive_count: int = 3
    retry_delay: float = 2.0
    batch_size: int = 8
    fetch_threads: int = 0  # 0 = auto: 8 for S3 (hides request latency), 2 for a local folder
    image_timeout: float = 120.0  # seconds one image may take to fetch and decode
    poll_interval: float = 0.5
    drain_timeout: float = 8.0  # seconds `up` lets its batch finish on SIGTERM (Docker kills at 10)
    # recognition
    min_confidence: float = 50.0  # the floor: labels below it are not indexed
    max_labels: int = 5
    max_pixels: int = 40_000_000
    decode_memory_mb: int = 512  # decoded pixels held at once by this process (docs/security.md)
    recognition_threads: int = 0  # 0 = all cores
    recognizers: str = "imagenet,objects,moderation"  # see docs/configuration.md
    # group the `faces` analyzer's faces into people (biometric data: off unless asked)
    face_recognition: bool = False
    semantic: bool = True  # embed each image's description for semantic / similar search
    clip_model_dir: str = ""  # a user-supplied ONNX CLIP model (see docs/models.md)
    rekognition_min_confidence: float = 55.0
    rekognition_max_labels: int = 50
    rekognition_moderation: bool = True
    # OpenSearch / Elasticsearch index (IMAGEDEX_INDEX=opensearch+http://host:9200/images)
    index_username: str = ""
    index_password: str = ""
    index_api_key: str = ""
    index_verify_tls: bool = True
    index_ca_file: str = ""
    index_sigv4_service: str = ""  # "es" for Amazon OpenSearch Service, "aoss" for Serverless
    # auto: 1 replica while the cluster has 2+ data nodes, none on one (auto_expand_replicas 0-1)
    index_replicas: str = "auto"
    index_refresh: str = "wait_for"  # wait_for | true | false
    # the SQLite index's facet column cache, per process (0: off; see docs/search-engines.md)
    index_facet_cache_mb: float = 512.0
    # API
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 50 * 1024 * 1024
    max_request_bytes: int = 1024 * 1024  # the body of every request but an upload
    watch_dir: str = ""
    public_url: str = ""  # how users reach the app (links in mails/Slack); default http://host:port
    thumbnail_size: int = 320
    # access control (docs/security.md)
    auth: str = "auto"  # auto: required when bound beyond loopback | on | off
    allowed_hosts: str = ""  # extra Host names served while auth is off (DNS-rebinding guard)
    trusted_proxies: str = ""  # addresses/networks whose X-Forwarded-For/-Proto are believed
    secret_key: str = ""  # signs sessions and links; empty: generated once into the data dir
    session_ttl: float = 12 * 3600.0
    link_ttl: float = 3600.0  # lifetime of signed image links
    login_attempts_per_minute: int = 10
    uploads_per_minute: int = 120
    notification_token: str = ""  # shared secret for POST /api/notifications (store webhooks)
    # notifications: email, Slack, webhooks (docs/reports-alerts.md)
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: str = "starttls"  # starttls | ssl | none
    smtp_from: str = "imagedex@localhost"
    webhook_secret: str = ""  # HMAC-SHA256 key for generic webhooks
    delivery_max_attempts: int = 6
    delivery_retry_delay: float = 30.0  # first retry; doubles each attempt
    delivery_allowed_hosts: str = ""  # internal hosts/networks webhooks may reach
    delivery_folder_root: str = ""  # folder: targets stay below it; empty: $DATA_DIR/deliveries
    # scheduled reports and aggregate alerts
    scheduler: bool = True  # `imagedex up` runs the scheduler (safe to run in several processes)
    timezone: str = "UTC"  # default zone for report schedules

    @property
    def store_url(self) -> str:
        return self.store or (self.data_dir / "images").resolve().as_uri()

    def with_overrides(self, **overrides: Any) -> Settings:
        clean = {k: v for k, v in overrides.items() if v is not None}
        if not clean:
            return self
        return _coerce(replace(self, **clean), dict.fromkeys(clean, "the command line"))


_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}
_NUMBER_WORDS = {"int": "a whole number", "float": "a number"}


class _Invalid(ValueError):
    """A value a setting cannot take; the message says what it can take."""


def _convert(name: str, raw: Any) -> Any:
    kind = _FIELD_TYPES[name]
    if kind == "Path":
        return Path(str(raw)).expanduser()
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise _Invalid("use true or false (also 1/0, yes/no, on/off)")
        return text in ("1", "true", "yes", "on")
    if kind in ("int", "float"):
        if isinstance(raw, bool):
            raise _Invalid(f"expected {_NUMBER_WORDS[kind]}, not true/false")
        try:
            number = int(raw) if kind == "int" else float(raw)
        except (TypeError, ValueError):
            raise _Invalid(f"expected {_NUMBER_WORDS[kind]}") from None
        if not math.isfinite(number):
            raise _Invalid(f"expected {_NUMBER_WORDS[kind]}")
        return number
    return str(raw)


# -- what each setting may be: checked before any command starts ---------------------------------

#: name -> (lowest, highest) allowed; None leaves that side open
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "visibility_timeout": (1, 43200),  # SQS allows up to 12 hours
    "index_facet_cache_mb": (0, 1_048_576),
    "max_receive_count": (1, 1000),
    "retry_delay": (0, 3600),
    "drain_timeout": (0, 3600),
    "batch_size": (1, 64),
    "fetch_threads": (0, 64),
    "image_timeout": (0.1, 3600),
    "poll_interval": (0, 20),  # the longest SQS long poll
    "min_confidence": (0, 100),
    "max_labels": (1, 1000),
    "max_pixels": (1, None),
    "decode_memory_mb": (16, None),
    "recognition_threads": (0, 1024),
    "rekognition_min_confidence": (0, 100),
    "rekognition_max_labels": (1, 1000),
    "port": (1, 65535),
    "smtp_port": (1, 65535),
    "max_upload_bytes": (1, None),
    "max_request_bytes": (1024, None),
    "thumbnail_size": (16, 4096),
    "session_ttl": (1, None),
    "link_ttl": (1, None),
    "login_attempts_per_minute": (0, None),  # 0: no limit
    "uploads_per_minute": (0, None),
    "delivery_max_attempts": (1, 100),
    "delivery_retry_delay": (0, 86400),
}

#: name -> the values it may take (compared case-insensitively)
CHOICES: dict[str, tuple[str, ...]] = {
    "auth": ("auto", "on", "off"),
    "index_refresh": ("wait_for", "true", "false"),
    "index_sigv4_service": ("", "es", "aoss"),
    "smtp_security": ("starttls", "ssl", "none"),
}


def _range_text(low: float | None, high: float | None) -> str:
    if high is None:
        return f"must be at least {low:g}"
    return f"must be between {low:g} and {high:g}"


def _check_range(name: str, value: float) -> None:
    low, high = _RANGES[name]
    if (low is not None and value < low) or (high is not None and value > high):
        raise _Invalid(_range_text(low, high))


def _check_choice(name: str, value: str) -> None:
    choices = CHOICES[name]
    if value.strip().lower() not in choices:
        shown = ", ".join(c or "''" for c in choices)
        raise _Invalid(f"choose from {shown}")


def _check_recognizers(value: str) -> str:
    """The analyzer names, former ones read as the current ones; unknown ones are refused with
    the registry's valid names and nearest match."""
    from imagedex.documents import current_analyzer_name
    from imagedex.recognition import ANALYZERS

    names = [current_analyzer_name(n.strip()) for n in value.split(",") if n.strip()]
    if not names:
        raise _Invalid(f"name at least one analyzer: {', '.join(ANALYZERS.names())}")
    for name in names:
        if name not in ANALYZERS:
            raise _Invalid(str(ANALYZERS.unknown(name)))
    return ",".join(dict.fromkeys(names))


def _check_registered(what: str, scheme: str, names: list[str], forms: str) -> None:
    if scheme not in names:
        nearest = difflib.get_close_matches(scheme, names, n=1, cutoff=0.5)
        hint = f" (did you mean {nearest[0]}://?)" if nearest else ""
        raise _Invalid(f"unknown {what} URL scheme {scheme!r}{hint}; use {forms}")


def _split(url: str, forms: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise _Invalid(f"not a valid URL ({exc}); use {forms}") from None
    return parts


def _check_store(value: str) -> None:
    if not value:
        return
    from imagedex.storage import STORES

    forms = "file:///path/to/folder or s3://bucket[/prefix]"
    parts = _split(value, forms)
    _check_registered("object store", parts.scheme, STORES.names(), forms)
    if parts.scheme == "file" and not parts.path.strip("/"):
        raise _Invalid(f"name a folder; use {forms}")
    if parts.scheme == "s3" and not parts.netloc:
        raise _Invalid(f"name a bucket; use {forms}")


def _check_queue(value: str) -> None:
    from imagedex.queue import QUEUES

    forms = "sqlite, sqlite:///path/queue.db, sqs://queue-name or an SQS queue URL"
    if value in ("", "sqlite"):
        return
    scheme, separator, rest = value.partition("://")
    _check_registered("queue", scheme if separator else value, QUEUES.names(), forms)
    if not rest.strip("/"):
        raise _Invalid(f"name the queue; use {forms}")
    _split(value, forms)


def _check_index(value: str) -> None:
    from imagedex.index import INDEXES, engine_nodes

    forms = (
        "sqlite, sqlite:///path/index.db or opensearch+https://host:9200/alias"
        " (several nodes: host1:9200,host2:9200)"
    )
    if value in ("", "sqlite"):
        return
    engine = "+" in value.partition("://")[0]
    parts = urlsplit(value) if engine else _split(value, forms)  # a node list has no one port
    _check_registered("index", parts.scheme, INDEXES.names(), forms)
    if parts.scheme == "sqlite":
        if not value.startswith("sqlite:///") or not parts.path.strip("/"):
            raise _Invalid(f"write sqlite:///path/to/index.db; use {forms}")
        return
    if engine:
        try:
            engine_nodes(value)
        except ValueError as exc:
            raise _Invalid(f"{exc}; use {forms}") from None
    alias = parts.path.strip("/")
    if alias and ("/" in alias or alias != alias.lower() or alias.startswith(("_", "-"))):
        raise _Invalid("the path must be one lower-case index name, not starting with _ or -")


def _check_url(value: str) -> None:
    if not value:
        return
    parts = _split(value, "http(s)://host[:port][/path]")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Invalid("use http(s)://host[:port][/path]")


def _check_timezone(value: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Invalid("use an IANA zone name such as UTC or Europe/Paris") from None


def _check_host(value: str) -> None:
    if not value.strip() or any(c.isspace() for c in value) or "/" in value:
        raise _Invalid("use an address such as 127.0.0.1, 0.0.0.0 or a host name")


def _check_proxies(value: str) -> None:
    import ipaddress

    for item in (part.strip() for part in value.split(",")):
        try:
            if item:
                ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise _Invalid(
                f"{item!r} is not an address or network: use e.g. 127.0.0.1, ::1, 10.0.0.0/8"
            ) from None


def _check_allowed_destinations(value: str) -> str:
    from imagedex.notify.addresses import AllowList

    try:
        allowed = AllowList.parse(value)
    except ConfigError as exc:
        why = f"{exc}; list IP addresses, networks or host names, comma-separated"
        raise _Invalid(why) from None
    return ",".join([str(n) for n in allowed.networks] + list(allowed.names))


def _check_replicas(value: str) -> str:
    text = value.strip().lower()
    if text == "auto":
        return text
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 100:
        raise _Invalid("use auto or a number of replicas from 0 to 100")
    return str(number)


def _check_absolute(value: str) -> None:
    if value and not Path(value).expanduser().is_absolute():
        raise _Invalid("use an absolute path (leave it empty for $DATA_DIR/deliveries)")


def _check_folder(value: str) -> None:
    if value and not Path(value).expanduser().is_dir():
        raise _Invalid("no such folder (leave it empty for none)")


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "clip_model_dir": _check_folder,
    "store": _check_store,
    "queue": _check_queue,
    "index": _check_index,
    "recognizers": _check_recognizers,
    "public_url": _check_url,
    "timezone": _check_timezone,
    "host": _check_host,
    "trusted_proxies": _check_proxies,
    "delivery_allowed_hosts": _check_allowed_destinations,
    "delivery_folder_root": _check_absolute,
    "index_replicas": _check_replicas,
}


def _check(name: str, value: Any) -> Any:
    """The value, normalised where a setting has a canonical spelling; _Invalid if it is not
    one the setting can take."""
    if name in _RANGES:
        _check_range(name, value)
    elif name in CHOICES:
        _check_choice(name, value)
    elif name in _CHECKS:
        checked = _CHECKS[name](value)
        return value if checked is None else checked
    return value


def _problem(name: str, raw: Any, source: str | None, why: str) -> str:
    where = f" (from {source})" if source else ""
    return f"setting '{name}'{where} has an invalid value {raw!r}: {why}"


def _validated(settings: Settings, sources: dict[str, str]) -> tuple[Settings, list[str]]:
    """Every field converted to its type and checked; invalid values are kept as given, each
    with one line saying what is wrong with it and what it may be."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in fields(Settings):
        raw = getattr(settings, f.name)
        try:
            values[f.name] = _check(f.name, _convert(f.name, raw))
        except _Invalid as exc:
            values[f.name] = raw
            problems.append(_problem(f.name, raw, sources.get(f.name), str(exc)))
    return Settings(**values), problems


def _coerce(settings: Settings, sources: dict[str, str] | None = None) -> Settings:
    result, problems = _validated(settings, sources or {})
    if problems:
        raise ConfigError("\n".join(problems))
    return result


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    section = data.get("imagedex", data)
    unknown = set(section) - set(_FIELD_TYPES)
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
    return dict(section)


def read_settings(
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> tuple[Settings, list[str]]:
    """Settings from defaults < TOML < IMAGEDEX_* env < overrides, and the problems found in
    them (one line each, naming the setting, where it came from, its value and the valid ones);
    invalid values are kept as given, so `imagedex config` can still show everything.

    The TOML file is `config_file`, else `$IMAGEDEX_CONFIG`, else `./imagedex.toml` if present.
    """
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = config_file or (
        Path(env[f"{ENV_PREFIX}CONFIG"]) if env.get(f"{ENV_PREFIX}CONFIG") else None
    )
    if path is None and Path(CONFIG_FILE_NAME).is_file():
        path = Path(CONFIG_FILE_NAME)
    if path is not None:
        from_file = _read_toml(path)
        values.update(from_file)
        sources.update(dict.fromkeys(from_file, str(path)))
    for name in _FIELD_TYPES:
        variable = ENV_PREFIX + name.upper()
        raw = env.get(variable)
        if raw not in (None, ""):
            values[name] = raw
            sources[name] = variable
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    sources.update(dict.fromkeys(given, "the command line"))
    return _validated(Settings(**values), sources)


def load_settings(
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings: defaults, then the TOML file, then IMAGEDEX_* env, then explicit overrides;
    ConfigError (one line per invalid setting) when any is invalid.

    The TOML file is `config_file`, else `$IMAGEDEX_CONFIG`, else `./imagedex.toml` if present.
    """
    settings, problems = read_settings(config_file, environ, **overrides)
    if problems:
        raise ConfigError("\n".join(problems))
    return settings
