"""One settings object, read from defaults < imagedex.toml < IMAGEDEX_* environment < CLI flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

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
    poll_interval: float = 0.5
    # recognition
    min_confidence: float = 50.0  # the floor: labels below it are not indexed
    max_labels: int = 5
    max_pixels: int = 40_000_000
    recognition_threads: int = 0  # 0 = all cores
    recognizers: str = "imagenet,objects,moderation"  # see docs/configuration.md
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
    index_replicas: int = 0
    index_refresh: str = "wait_for"  # wait_for | true | false
    # API
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 50 * 1024 * 1024
    watch_dir: str = ""
    public_url: str = ""  # how users reach the app (links in mails/Slack); default http://host:port
    thumbnail_size: int = 320
    # access control (docs/security.md)
    auth: str = "auto"  # auto: required when bound beyond loopback | on | off
    allowed_hosts: str = ""  # extra Host names served while auth is off (DNS-rebinding guard)
    secret_key: str = ""  # signs sessions and links; empty: generated once into the data dir
    session_ttl: float = 12 * 3600.0
    link_ttl: float = 3600.0  # lifetime of signed image links
    login_attempts_per_minute: int = 10
    uploads_per_minute: int = 120
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
    # scheduled reports and aggregate alerts
    scheduler: bool = True  # `imagedex up` runs the scheduler (safe to run in several processes)
    timezone: str = "UTC"  # default zone for report schedules

    @property
    def store_url(self) -> str:
        return self.store or (self.data_dir / "images").resolve().as_uri()

    def with_overrides(self, **overrides: Any) -> Settings:
        clean = {k: v for k, v in overrides.items() if v is not None}
        return _coerce(replace(self, **clean)) if clean else self


_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}


def _convert(name: str, raw: Any) -> Any:
    kind = _FIELD_TYPES[name]
    try:
        if kind == "Path":
            return Path(str(raw)).expanduser()
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError("expected true or false")
            return text in ("1", "true", "yes", "on")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} has an invalid value {raw!r}: {exc}") from exc


def _coerce(settings: Settings) -> Settings:
    values = {f.name: _convert(f.name, getattr(settings, f.name)) for f in fields(Settings)}
    result = Settings(**values)
    if result.max_receive_count < 1:
        raise ConfigError("max_receive_count must be at least 1")
    if result.batch_size < 1 or result.batch_size > 64:
        raise ConfigError("batch_size must be between 1 and 64")
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


def load_settings(
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings: defaults, then the TOML file, then IMAGEDEX_* env, then explicit overrides.

    The TOML file is `config_file`, else `$IMAGEDEX_CONFIG`, else `./imagedex.toml` if present.
    """
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    path = config_file or (
        Path(env[f"{ENV_PREFIX}CONFIG"]) if env.get(f"{ENV_PREFIX}CONFIG") else None
    )
    if path is None and Path(CONFIG_FILE_NAME).is_file():
        path = Path(CONFIG_FILE_NAME)
    if path is not None:
        values.update(_read_toml(path))
    for name in _FIELD_TYPES:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw not in (None, ""):
            values[name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _coerce(Settings(**{k: v for k, v in values.items()}))
