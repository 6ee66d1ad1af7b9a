"""The label vocabulary people search with (`data/vocabulary.json`).

Every model's classes map into one set of friendly labels ("Dog", "Car", "Person") with curated
parents ("Dog" -> "Pet", "Mammal", "Animal") and aliases ("Puppy"), so the classifier and the
detector speak the same words, search by `animal` finds both, and the WordNet internals of
ImageNet's hierarchy (artifact, instrumentality, carnivore, covering, ...) never reach search,
facets or dashboards.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from imagedex.errors import RecognitionError

_SMALL_WORDS = {"of", "or", "and", "the", "a", "an", "in", "on"}


@dataclass(frozen=True)
class Term:
    """A friendly label: its name, every broader label (most specific first) and aliases."""

    name: str
    parents: tuple[str, ...]
    aliases: tuple[str, ...]


def display_name(name: str) -> str:
    """A class name as a label people read: "tabby cat" -> "Tabby Cat", "CRT monitor" ->
    "CRT Monitor", "bird of prey" -> "Bird of Prey"."""
    words = name.split(" ")
    shown = [
        word
        if any(c.isupper() for c in word) or (i and word in _SMALL_WORDS)
        else word[:1].upper() + word[1:]
        for i, word in enumerate(words)
    ]
    return " ".join(shown)


class Vocabulary:
    """Friendly labels and the maps from model classes into them."""

    def __init__(self, data: dict[str, Any]) -> None:
        raw_labels: dict[str, dict[str, list[str]]] = data["labels"]
        direct = {
            name: (tuple(entry.get("parents", ())), tuple(entry.get("aliases", ())))
            for name, entry in raw_labels.items()
        }
        self.terms: dict[str, Term] = {}
        for name, (_parents, aliases) in direct.items():
            self.terms[name.lower()] = Term(name, self._closure(name, direct), aliases)
        self.wordnet: dict[str, str] = {
            str(k).lower(): str(v) for k, v in (data.get("wordnet") or {}).items()
        }
        self.coco: dict[str, str] = {str(k): str(v) for k, v in (data.get("coco") or {}).items()}
        self.imagenet_parents: dict[str, tuple[str, ...]] = {
            str(k): tuple(v) for k, v in (data.get("imagenet") or {}).items()
        }
        #: lower-cased labels said without an article ("clothing", not "a clothing")
        self.uncountable: frozenset[str] = frozenset(
            str(n).lower() for n in data.get("uncountable") or ()
        )
        unknown = [
            n
            for n in [*self.wordnet.values(), *self.coco.values()]
            + [p for ps in self.imagenet_parents.values() for p in ps]
            if n.lower() not in self.terms
        ]
        if unknown:
            raise RecognitionError(f"vocabulary.json maps to undefined labels: {unknown}")

    @staticmethod
    def _closure(
        name: str, direct: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    ) -> tuple[str, ...]:
        found: list[str] = []
        pending = list(direct.get(name, ((), ()))[0])
        while pending:
            parent = pending.pop(0)
            if parent not in direct:
                raise RecognitionError(f"vocabulary.json: {name!r} has undefined parent {parent!r}")
            if parent != name and parent not in found:
                found.append(parent)
                pending.extend(direct[parent][0])
        return tuple(found)

    def term(self, name: str) -> Term | None:
        return self.terms.get(name.lower())

    def broader(self, names: Iterable[str]) -> tuple[str, ...]:
        """The friendly labels `names` stand for and all their parents, without repeats, most
        specific first (a label with more ancestors comes before a broader one)."""
        found: list[str] = []
        for name in names:
            term = self.term(name)
            if term is None:
                continue
            for label in (term.name, *term.parents):
                if label not in found:
                    found.append(label)
        return tuple(sorted(found, key=lambda n: -len(self.terms[n.lower()].parents)))

    def imagenet_class(
        self, name: str, wordnet_parents: Sequence[str], aliases: Sequence[str]
    ) -> Term:
        """An ImageNet class as a label: its display name (the friendly one when the class is a
        vocabulary label itself), the friendly labels of its searchable WordNet parents (or the
        vocabulary's own parents for it, where WordNet's mislead), and its aliases."""
        own = self.term(name)
        if name in self.imagenet_parents:
            mapped = list(self.imagenet_parents[name])
        else:
            mapped = [self.wordnet[p.lower()] for p in wordnet_parents if p.lower() in self.wordnet]
        if own is not None:
            parents = self.broader([*own.parents, *mapped])
            merged = tuple(dict.fromkeys([*own.aliases, *aliases]))
            return Term(own.name, tuple(p for p in parents if p != own.name), merged)
        parents = self.broader(mapped)
        shown = display_name(name)
        return Term(shown, tuple(p for p in parents if p.lower() != shown.lower()), tuple(aliases))

    def coco_class(self, name: str) -> Term:
        """A COCO detector class as a label."""
        term = self.term(self.coco.get(name, name))
        if term is None:
            return Term(display_name(name), (), ())
        return term


@lru_cache(maxsize=1)
def load_vocabulary() -> Vocabulary:
    """The shipped vocabulary (read once per process)."""
    package = "imagedex.recognition"
    try:
        text = resources.files(package).joinpath("data", "vocabulary.json").read_text("utf-8")
        return Vocabulary(json.loads(text))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RecognitionError(f"cannot read the label vocabulary: {exc}") from exc
