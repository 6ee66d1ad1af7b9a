import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagedex.documents import SearchQuery
from imagedex.errors import QuerySyntaxError
from imagedex.index.query_syntax import parse_query


def test_every_key_and_free_text() -> None:
    query = parse_query(
        'LABEL:dog label:"golden retriever" Conf>90 after:2026-01-01 '
        "before:2026-02-01T12:00:00+02:00 unsafe sort:Newest beach party"
    )
    assert query.labels == ("dog", "golden retriever")
    assert query.min_confidence == 90
    assert query.date_from == "2026-01-01T00:00:00.000Z"
    assert query.date_to == "2026-02-01T10:00:00.000Z"  # to UTC
    assert query.moderation == "unsafe"
    assert query.sort == "newest"
    assert query.text == "beach party"


@pytest.mark.parametrize(
    ("text", "confidence"),
    [
        ("confidence>=90", 90),
        ("conf>90", 90),
        ("conf:75.5", 75.5),
        ("CONF=0", 0),
        ("conf>=100%", 100),
    ],
)
def test_confidence_forms(text: str, confidence: float) -> None:
    assert parse_query(text).min_confidence == confidence


def test_dates_of_reduced_precision_and_offsets() -> None:
    query = parse_query("after:2026 before:2026-02")
    assert (query.date_from, query.date_to) == (
        "2026-01-01T00:00:00.000Z",
        "2026-02-01T00:00:00.000Z",
    )
    shifted = parse_query("after:2026-01-01T01:30:00+01:30 before:2026-01-02T00:00")
    assert (shifted.date_from, shifted.date_to) == (
        "2026-01-01T00:00:00.000Z",
        "2026-01-02T00:00:00.000Z",
    )


def test_moderation_forms_and_quoted_words_stay_text() -> None:
    assert parse_query("safe").moderation == "safe"
    assert parse_query("moderation:UNSAFE").moderation == "unsafe"
    assert parse_query("moderation:any", SearchQuery(moderation="safe")).moderation == ""
    quoted = parse_query('"safe" "golden retriever"')
    assert (quoted.moderation, quoted.text) == ("", "safe golden retriever")


def test_unknown_keys_urls_and_times_are_free_text() -> None:
    query = parse_query("camera:nikon http://example.org 10:30 -label:x")
    assert query.text == "camera:nikon http://example.org 10:30 -label:x"
    assert query.labels == ()


def test_empty_and_blank_text_give_the_base() -> None:
    assert parse_query("") == SearchQuery()
    assert parse_query("   ") == SearchQuery()
    base = SearchQuery(labels=("cat",), limit=5, text="sofa", min_confidence=40)
    merged = parse_query("label:dog conf>=80 blanket", base)
    assert merged.labels == ("cat", "dog")
    assert merged.text == "sofa blanket"
    assert (merged.min_confidence, merged.limit) == (80, 5)
    assert parse_query("label:dog", base).min_confidence == 40


def test_unclosed_quote_runs_to_the_end() -> None:
    assert parse_query('label:"golden retr').labels == ("golden retr",)
    assert parse_query('"open 24').text == "open 24"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("conf>=ninety", "conf>=ninety"),
        ("confidence>=101", "confidence>=101"),
        ("conf:nan", "conf:nan"),
        ("conf<50", "conf<50"),
        ("after:someday", "after:someday"),
        ("before:2026-13-01", "before:2026-13-01"),
        ("before:2026-1", "before:2026-1"),
        ("after:20261", "after:20261"),
        ("label:", "label:"),
        ('label:""', 'label:""'),
        ("sort:random", "sort:random"),
        ("moderation:maybe", "moderation:maybe"),
        ("after>2026-01-01", "after>2026-01-01"),
    ],
)
def test_bad_values_name_the_token(text: str, named: str) -> None:
    with pytest.raises(QuerySyntaxError, match=re.escape(named)) as caught:
        parse_query(f"beach {text}")
    assert isinstance(caught.value, ValueError)  # the API answers 400 for ValueErrors


def test_reversed_dates_are_explained() -> None:
    with pytest.raises(QuerySyntaxError, match="later than before"):
        parse_query("after:2026-03-01 before:2026-02-01")
    with pytest.raises(QuerySyntaxError, match="later than before"):
        parse_query("after:2026-03-01", SearchQuery(date_to="2026-02-01"))


KEYS = [
    "label:",
    "LABEL:",
    "conf>",
    "confidence>=",
    "conf:",
    "conf<",
    "after:",
    "before:",
    "moderation:",
    "sort:",
    "safe",
    "unsafe",
    '"',
    " ",
    "x:",
]
TOKENS = st.lists(st.sampled_from(KEYS) | st.text(max_size=12), max_size=8).map("".join)


@settings(max_examples=500, deadline=None)
@given(TOKENS | st.text(max_size=60))
def test_parse_never_raises_anything_else(text: str) -> None:
    try:
        query = parse_query(text)
    except QuerySyntaxError:
        return
    assert isinstance(query, SearchQuery)
    assert 0 <= query.min_confidence <= 100
    assert query.text is None or query.text.strip()
