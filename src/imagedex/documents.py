"""The indexed document, its labels and the query model shared by every backend."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from imagedex.clock import utc_now

#: Names analyzers had before each had one name everywhere (settings, `analyzed_with`,
#: `--analyzer`); documents and arguments that use them are read with the current name, so an
#: upgrade does not make every stored document look outdated.
FORMER_ANALYZER_NAMES = {
    "imagenet-mobilenet_v2": "imagenet",
    "moderation-opennsfw": "moderation",
    "faces-haar": "faces",
    "people-hog": "people",
    "ocr-rapidocr": "ocr",
    "aws-rekognition": "rekognition",
}


def current_analyzer_name(name: str) -> str:
    return FORMER_ANALYZER_NAMES.get(name, name)


def document_id(bucket: str, key: str) -> str:
    """Stable id from the object identity, so a re-delivered event overwrites, never duplicates."""
    return hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Label:
    """One recognised label, shaped like an Amazon Rekognition label (confidence 0-100)."""

    label: str
    confidence: float
    parents: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    instances: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 3),
            "parents": list(self.parents),
            "aliases": list(self.aliases),
            "instances": [dict(i) for i in self.instances],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Label:
        return cls(
            label=str(data["label"]),
            confidence=float(data["confidence"]),
            parents=tuple(data.get("parents") or ()),
            aliases=tuple(data.get("aliases") or ()),
            instances=tuple(data.get("instances") or ()),
        )

    def terms(self) -> set[str]:
        """Every lower-cased name a search for this label may use: itself, parents, aliases."""
        return {t.lower() for t in (self.label, *self.parents, *self.aliases) if t}


def leaf_label_names(labels: Sequence[Label]) -> set[str]:
    """Lower-cased names of the labels that no other label of the same image has as a parent:
    what an image counts as in top labels and facets ("Golden Retriever", not also "Dog" and
    "Animal", which are labels of their own so that searches by them find it)."""
    broader = {p.lower() for label in labels for p in label.parents}
    return {label.label.lower() for label in labels if label.label.lower() not in broader}


@dataclass
class ImageDocument:
    """What the index stores for one object; identical on every backend."""

    id: str
    bucket: str
    key: str
    title: str
    s3_location: str
    etag: str = ""
    size: int = 0
    content_type: str = ""
    width: int | None = None
    height: int | None = None
    taken_at: str | None = None
    camera: str | None = None
    gps: dict[str, float] | None = None
    ingested_at: str = ""
    #: When the image's analysis was last made (ingestion, or `imagedex reprocess` since); the
    #: indexes give documents from before this field their `ingested_at`, the earliest it can be
    analyzed_at: str = ""
    analyzed_with: dict[str, str] = field(default_factory=dict)
    labels: list[Label] = field(default_factory=list)
    faces: list[dict[str, Any]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    moderation: list[dict[str, Any]] = field(default_factory=list)
    embedding: list[float] | None = None
    #: How the image looks (1280 floats, unit length, from the ImageNet model): "more like this"
    visual_embedding: list[float] | None = None
    description: str = ""
    phash: str = ""
    near_duplicates: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # asdict() deep-copies every field; the labels and the vectors are copied here directly
        # instead (4x faster per document, measured in bench/bench_index.py)
        data = asdict(replace(self, labels=[], embedding=None, visual_embedding=None))
        data["labels"] = [label.to_dict() for label in self.labels]
        data["embedding"] = list(self.embedding) if self.embedding is not None else None
        visual = self.visual_embedding
        data["visual_embedding"] = list(visual) if visual is not None else None
        return data

    def label_text(self) -> str:
        """Label names with their parents and aliases, as one string for full-text indexes."""
        return " | ".join(" ".join((lb.label, *lb.parents, *lb.aliases)) for lb in self.labels)

    @property
    def unsafe_confidence(self) -> float:
        """The highest moderation confidence (0 when nothing unsafe was detected)."""
        return max((float(m.get("confidence", 0.0)) for m in self.moderation), default=0.0)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageDocument:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["labels"] = [Label.from_dict(x) for x in data.get("labels") or []]
        values["analyzed_at"] = values.get("analyzed_at") or ""  # engines keep "" as null
        for by_analyzer in ("analyzed_with", "errors"):
            if values.get(by_analyzer):
                values[by_analyzer] = {
                    current_analyzer_name(k): v for k, v in values[by_analyzer].items()
                }
        return cls(**values)

    def to_hit(self, url: str | None = None) -> dict[str, Any]:
        """The compact form search results use (CLI --json and the HTTP API)."""
        hit: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "s3_location": self.s3_location,
            "bucket": self.bucket,
            "key": self.key,
            "labels": [
                {
                    "label": lb.label,
                    "confidence": round(lb.confidence, 2),
                    "parents": list(lb.parents),
                }
                for lb in self.labels
            ],
            "width": self.width,
            "height": self.height,
            "ingested_at": self.ingested_at,
            "analyzed_at": self.analyzed_at,
            "description": self.description,
        }
        if url is not None:
            hit["url"] = url
        return hit


#: How a date may be written, for error messages (`after:`, `--after`, `date_from`, ...).
DATE_FORMS = (
    "an ISO-8601 date or date-time (2026-01-31, 2026-01-31T08:00:00Z), today, yesterday, "
    "tomorrow, now, or a time ago such as -30m, -2h, -7d or -1w"
)
_RELATIVE = re.compile(r"(?:now)?-(\d{1,6})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DAYS = {"today": 0, "yesterday": -1, "tomorrow": 1}


def _relative(text: str, now: datetime) -> datetime | None:
    """`now`, `today` / `yesterday` / `tomorrow` (midnight UTC) or `-7d` / `now-7d` (minutes,
    hours, days, weeks before now, as Kibana writes them); None for anything else."""
    word = text.lower()
    if word == "now":
        return now
    if word in _DAYS:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight + timedelta(days=_DAYS[word])
    match = _RELATIVE.fullmatch(word)
    if match is None:
        return None
    amount, unit = int(match.group(1)), match.group(2)
    return now - timedelta(**{_UNITS[unit]: amount})


def utc_timestamp(value: str, now: datetime | None = None) -> str:
    """A date as the canonical UTC form `YYYY-MM-DDTHH:MM:SS.mmmZ`.

    ISO-8601: a date alone is its midnight, a month (`2026-02`) or year (`2026`) its first day;
    a time without an offset is UTC. Relative: `today`, `yesterday`, `tomorrow` (midnight UTC,
    like a date without an offset), `now`, `-7d`, `-2h` (from `now`, default the wall clock).
    Canonical strings compare in time order, which is what lets the SQLite index range-scan them.
    """
    text = value.strip()
    if len(text) in (4, 7) and text.replace("-", "").isdigit() and text.isascii():
        text += "-01-01" if len(text) == 4 else "-01"
    try:
        moment = _relative(text, (now or utc_now()).astimezone(UTC))
        if moment is None:
            moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{value!r} is not an ISO-8601 date or a relative one: use {DATE_FORMS}"
        ) from None
    if not 1900 <= moment.year <= 9998:  # bucket arithmetic near year 1 or 9999 overflows
        raise ValueError(f"{value!r} is out of range: use a date between 1900 and 9998")
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: The document fields a vector query can search: the text embedding and the visual one.
VECTOR_FIELDS = ("embedding", "visual_embedding")


@dataclass(frozen=True)
class SearchQuery:
    """One query model; each backend translates it structurally, never user text into SQL/DSL."""

    text: str | None = None
    labels: tuple[str, ...] = ()
    match_all_labels: bool = True
    min_confidence: float = 0.0
    limit: int = 20
    offset: int = 0
    sort: str = "relevance"  # relevance | newest | oldest | title
    moderation: str = ""  # "" (any) | "safe" | "unsafe"
    vector: tuple[float, ...] | None = None  # semantic / similar-image: nearest neighbours first
    # the document vector `vector` is compared with: "embedding" (text: semantic search, and
    # "more like this" for images without a visual one) or "visual_embedding" (how images look)
    vector_field: str = "embedding"
    exclude_id: str = ""  # "more like this": leave the example image itself out
    unsafe_threshold: float = 50.0  # moderation confidence at which an image counts as unsafe
    # ingested_at range, from inclusive, to exclusive; any ISO-8601 form in, canonical UTC kept
    date_from: str | None = None
    date_to: str | None = None
    # people the image must show, each a person's id or name as typed (`person:"Anna"`); the
    # index resolves them through the people store (an unknown one matches nothing)
    people: tuple[str, ...] = ()
    # count the matches exactly up to this many and stop there (the result then says its total
    # is a lower bound), as Elasticsearch's track_total_hits does; 0: count every match
    track_total: int = 0

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None:
                try:
                    object.__setattr__(self, name, utc_timestamp(value))
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(
                f"date_from {self.date_from} is after date_to {self.date_to}: swap them"
            )
        if not 0 <= self.min_confidence <= 100:
            raise ValueError("min_confidence must be between 0 and 100")
        if not 1 <= self.limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        if self.offset < 0:
            raise ValueError("offset must be >= 0")
        if self.track_total < 0:
            raise ValueError("track_total must be >= 0 (0: count every match)")
        if self.moderation not in ("", "safe", "unsafe"):
            raise ValueError("moderation must be '', 'safe' or 'unsafe'")
        if self.sort not in ("relevance", "newest", "oldest", "title"):
            raise ValueError("sort must be one of relevance, newest, oldest, title")
        if self.vector_field not in VECTOR_FIELDS:
            raise ValueError(f"vector_field must be one of {', '.join(VECTOR_FIELDS)}")


@dataclass
class SearchResult:
    total: int
    documents: list[ImageDocument]
    # the matches are more than `total` (counting stopped at the query's track_total)
    total_is_lower_bound: bool = False


@dataclass(frozen=True)
class LabelCount:
    label: str
    count: int


@dataclass(frozen=True)
class TimeBucket:
    """Images ingested in [start, start + interval); start is UTC `YYYY-MM-DDTHH:MM:SSZ`."""

    start: str
    count: int


@dataclass(frozen=True)
class ConfidenceBucket:
    """Images whose best label confidence is in [low, high) (the last bucket includes 100)."""

    low: int
    high: int
    count: int


@dataclass(frozen=True)
class ModerationCounts:
    """Images below (safe) and at or above (unsafe) the query's unsafe threshold, and the
    moderation labels at or above it, counted in images."""

    safe: int
    unsafe: int
    labels: list[LabelCount]


@dataclass(frozen=True)
class Facets:
    """Aggregations over the documents a query matches (see SearchIndex.facets)."""

    total: int
    labels: list[LabelCount]
    over_time: list[TimeBucket]
    confidence: list[ConfidenceBucket]
    moderation: ModerationCounts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
