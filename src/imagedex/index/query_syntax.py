"""The search box syntax: `label:dog conf>=90 after:2026-01-01 unsafe beach` into a SearchQuery.

Tokens are separated by spaces; double quotes group words (`label:"golden retriever"`, or a
quoted phrase as free text). Keys are case-insensitive:

- `label:X` (repeatable; all must match unless the base query says any)
- `person:X` (repeatable; the image shows every one): a person's name (`person:"Anna Lee"`,
  case-insensitive; any of the people of that name) or id (`person:12`)
- `confidence>=N`, `confidence>N`, `confidence:N`, `conf...`: minimum label confidence 0-100
  (`>` reads as "at least", like the confidence slider)
- `after:DATE` (ingested on or after, inclusive), `before:DATE` (before, exclusive); ISO-8601
  dates or date-times, UTC unless an offset is given, or relative: `today`, `yesterday`
  (midnight UTC), `now`, `-7d`, `-2h`, `-30m`, `-1w` (`now-7d` as Kibana writes it)
- `unsafe`, `safe`, `moderation:unsafe|safe|any`
- `sort:relevance|newest|oldest|title`

Anything else, including unknown `key:value` pairs, is free text: every word must match and the
last one also matches as a prefix, a single character too (as the engines' `bool_prefix`; see
docs/search-engines.md). A known key with a bad value raises QuerySyntaxError naming the token.
"""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import datetime

from imagedex.documents import DATE_FORMS, SearchQuery, utc_timestamp
from imagedex.errors import QuerySyntaxError

# a run of unquoted characters and quoted groups; an unclosed quote runs to the end
_TOKEN = re.compile(r'(?:[^\s"]+|"[^"]*"?)+')
_KEYED = re.compile(r"([A-Za-z_]+)(>=|<=|>|<|=|:)(.*)", re.DOTALL)
_CONFIDENCE_KEYS = ("confidence", "conf")
_KEYS = ("label", "person", "after", "before", "moderation", "sort", *_CONFIDENCE_KEYS)
_SORTS = ("relevance", "newest", "oldest", "title")
_MODERATION = {"unsafe": "unsafe", "safe": "safe", "any": ""}


def _unquote(value: str) -> str:
    return value.replace('"', "").strip()


def _confidence(token: str, op: str, value: str) -> float:
    if op in ("<", "<="):
        raise QuerySyntaxError(
            f"{token!r}: only a minimum confidence can be given, e.g. confidence>=90"
        )
    try:
        number = float(value.removesuffix("%"))
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise QuerySyntaxError(
            f"{token!r}: confidence must be a number from 0 to 100, e.g. confidence>=90"
        )
    return number


def _date(token: str, value: str, now: datetime | None) -> str:
    try:
        return utc_timestamp(value, now)
    except ValueError as exc:
        problem = "out of range" if "out of range" in str(exc) else "not a date"
        raise QuerySyntaxError(f"{token!r}: {problem}; use {DATE_FORMS}") from None


def parse_query(
    text: str, base: SearchQuery | None = None, now: datetime | None = None
) -> SearchQuery:
    """`text` in the search box syntax applied over `base` (default: an empty query): its
    labels are added to base's, its free text joins base's, its other values replace base's.
    Relative dates (`after:-7d`) count back from `now` (default: the wall clock)."""
    base = base or SearchQuery()
    changes: dict[str, object] = {}
    labels: list[str] = []
    people: list[str] = []
    words: list[str] = [base.text] if base.text else []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        keyed = _KEYED.fullmatch(token)
        key = keyed.group(1).lower() if keyed else ""
        if not keyed or key not in _KEYS:
            bare = token.lower()
            if bare in ("safe", "unsafe"):
                changes["moderation"] = bare
            elif _unquote(token):
                words.append(_unquote(token))
            continue
        _, op, raw = keyed.groups()
        value = _unquote(raw)
        if key in _CONFIDENCE_KEYS:
            changes["min_confidence"] = _confidence(token, op, value)
            continue
        if op not in (":", "="):
            raise QuerySyntaxError(f"{token!r}: write {key}:VALUE, e.g. {_example(key)}")
        if not value:
            raise QuerySyntaxError(f"{token!r} needs a value, e.g. {_example(key)}")
        if key == "label":
            labels.append(value)
        elif key == "person":
            people.append(value)
        elif key == "after":
            changes["date_from"] = _date(token, value, now)
        elif key == "before":
            changes["date_to"] = _date(token, value, now)
        elif key == "moderation":
            if value.lower() not in _MODERATION:
                raise QuerySyntaxError(f"{token!r}: moderation is unsafe, safe or any")
            changes["moderation"] = _MODERATION[value.lower()]
        elif value.lower() in _SORTS:
            changes["sort"] = value.lower()
        else:
            raise QuerySyntaxError(f"{token!r}: sort is one of {', '.join(_SORTS)}")
    date_from = changes.get("date_from", base.date_from)
    date_to = changes.get("date_to", base.date_to)
    if date_from and date_to and str(date_from) > str(date_to):
        raise QuerySyntaxError(
            f"after: {date_from} is later than before: {date_to}; nothing can match (swap them)"
        )
    try:
        return dataclasses.replace(
            base,
            labels=(*base.labels, *labels),
            people=(*base.people, *people),
            text=" ".join(words) or None,
            **changes,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise QuerySyntaxError(str(exc)) from None


def _example(key: str) -> str:
    return {
        "label": 'label:dog or label:"golden retriever"',
        "person": 'person:Anna or person:"Anna Lee"',
        "after": "after:2026-01-01 or after:-7d",
        "before": "before:2026-02-01",
        "moderation": "moderation:unsafe",
        "sort": "sort:newest",
    }[key]
