"""Text-rule patterns that cannot stall the worker.

Two guards. When a rule is saved, patterns are short and the obviously exponential shapes (a
repeat inside a repeat, an alternation inside a repeat) are refused with a clear message. When a
pattern runs, it runs under the `regex` module's time limit over bounded text, so even a pattern
the structural check lets through (`a*a*a*a*b` is polynomial but slow) cannot stall the worker:
a search that runs out of time counts as no match and is logged.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import regex as timed_regex

from imagedex.errors import ConfigError

log = logging.getLogger(__name__)

MAX_PATTERN_LENGTH = 200
MAX_LINE_CHARS = 500  # OCR lines are short; a longer one is cut
MAX_TEXT_CHARS = 10_000  # per document
SEARCH_SECONDS = 0.02  # per line searched; at most MAX_TEXT_CHARS / line lengths lines

_parser: Any = importlib.import_module("re._parser")  # the stdlib's own regex parser
_REPEATS = {_parser.MAX_REPEAT, _parser.MIN_REPEAT, getattr(_parser, "POSSESSIVE_REPEAT", None)}

Matcher = Callable[[str], "str | None"]


def compile_pattern(pattern: str, regex: bool) -> Matcher:
    """A function returning the matched text of a line (or None), or ConfigError."""
    if not pattern:
        raise ConfigError("the text pattern is empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ConfigError(f"the text pattern is longer than {MAX_PATTERN_LENGTH} characters")
    return _compiled(pattern, regex)


@lru_cache(maxsize=256)
def _compiled(pattern: str, regex: bool) -> Matcher:
    if not regex:
        needle = pattern.casefold()

        def substring(line: str) -> str | None:
            at = line.casefold().find(needle)
            return line[at : at + len(pattern)] if at >= 0 else None

        return substring
    try:
        tree = _parser.parse(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(f"invalid regular expression {pattern!r}: {exc}") from exc
    if _risky(tree, inside_repeat=False):
        raise ConfigError(
            f"regular expression {pattern!r} nests a repeat or an alternation inside a repeat "
            "(like (a+)+ or (a|ab)*), which can take exponential time; simplify it"
        )
    compiled = timed_regex.compile(pattern, timed_regex.IGNORECASE | timed_regex.VERSION0)

    def search(line: str) -> str | None:
        try:
            found = compiled.search(line, timeout=SEARCH_SECONDS)
        except TimeoutError:
            log.warning("text pattern %r ran out of time on a %d-char line", pattern, len(line))
            return None
        return found.group(0) if found else None

    return search


def _risky(items: Iterable[Any], inside_repeat: bool) -> bool:
    """True when a repeat holds another unbounded repeat or an alternation."""
    for op, arg in items:
        if op in _REPEATS:
            high, body = arg[1], arg[2]
            unbounded = high == _parser.MAXREPEAT or high > 10
            if (inside_repeat and unbounded) or _risky(body, inside_repeat or unbounded):
                return True
        elif op == _parser.BRANCH:
            if inside_repeat or any(_risky(branch, False) for branch in arg[1]):
                return True
        elif op == _parser.SUBPATTERN or op == getattr(_parser, "ATOMIC_GROUP", None):
            if _risky(arg[-1] if op == _parser.SUBPATTERN else arg, inside_repeat):
                return True
        elif op in (_parser.ASSERT, _parser.ASSERT_NOT) and _risky(arg[1], inside_repeat):
            return True
    return False


def bounded_lines(lines: Iterable[str]) -> list[str]:
    """The lines a pattern runs over: each cut to MAX_LINE_CHARS, MAX_TEXT_CHARS in all."""
    kept: list[str] = []
    budget = MAX_TEXT_CHARS
    for line in lines:
        if budget <= 0:
            break
        piece = str(line)[: min(MAX_LINE_CHARS, budget)]
        kept.append(piece)
        budget -= len(piece)
    return kept
