"""The label vocabulary people search with, and how every analyzer's labels become one list."""

from __future__ import annotations

from imagedex.documents import Label
from imagedex.recognition.evidence import above_floor, combine, finish
from imagedex.recognition.imagenet import class_terms, load_classes
from imagedex.recognition.vocabulary import display_name, load_vocabulary

WORDNET_INTERNALS = {
    "artifact",
    "instrumentality",
    "whole",
    "organism",
    "structure",
    "covering",
    "carnivore",
    "canine",
    "container",
    "vessel",
    "device",
    "invertebrate",
}


def test_every_imagenet_class_has_a_friendly_name_and_searchable_parents() -> None:
    vocabulary = load_vocabulary()
    terms = class_terms(load_classes(), vocabulary)
    assert len(terms) == 1000
    for term in terms:
        # Title Case, except names spelled with capitals of their own (iPod)
        assert term.name[:1].isupper() or any(c.isupper() for c in term.name), term.name
        for parent in term.parents:
            assert vocabulary.term(parent) is not None, (term.name, parent)
            assert parent.lower() not in WORDNET_INTERNALS
    by_name = {t.name: t for t in terms}
    assert by_name["Golden Retriever"].parents == ("Dog", "Pet", "Mammal", "Animal")
    assert by_name["Sports Car"].parents == ("Car", "Vehicle")
    assert by_name["Granny Smith Apple"].parents == ("Apple", "Fruit", "Food")
    assert by_name["Coffee Mug"].parents == ("Cup", "Tableware")
    assert by_name["Zebra"].parents == ("Wildlife", "Mammal", "Animal")  # a class that is a label


def test_parent_overrides_name_real_classes_and_fix_wordnet() -> None:
    vocabulary = load_vocabulary()
    names = {c.name for c in load_classes()}
    assert set(vocabulary.imagenet_parents) <= names
    terms = {t.name: t for t in class_terms(load_classes(), vocabulary)}
    assert terms["Bottle Cap"].parents == ()  # WordNet's "cap" is no hat here
    assert "Computer" not in terms["Website"].parents


def test_every_coco_class_maps_into_the_vocabulary() -> None:
    vocabulary = load_vocabulary()
    assert len(vocabulary.coco) == 80
    person = vocabulary.coco_class("person")
    assert person.name == "Person" and "Human" in person.aliases
    assert vocabulary.coco_class("giraffe").parents == ("Wildlife", "Mammal", "Animal")
    assert vocabulary.coco_class("sports ball").name == "Ball"
    assert vocabulary.coco_class("tv").aliases == ("Television",)
    assert vocabulary.coco_class("dog").name == vocabulary.term("dog").name  # type: ignore[union-attr]


def test_parents_come_most_specific_first() -> None:
    vocabulary = load_vocabulary()
    assert vocabulary.broader(["Animal", "Dog"]) == ("Dog", "Pet", "Mammal", "Animal")
    assert vocabulary.broader(["Mobile Phone"]) == ("Mobile Phone", "Phone", "Electronics")


def test_display_names() -> None:
    assert display_name("tabby cat") == "Tabby Cat"
    assert display_name("CRT monitor") == "CRT Monitor"
    assert display_name("bird of prey") == "Bird of Prey"


def test_the_same_label_from_two_analyzers_combines_its_evidence() -> None:
    box = {"bbox": {"left": 0.1, "top": 0.1, "width": 0.5, "height": 0.5}, "confidence": 60.0}
    labels = [
        Label("Dog", 70.0, ("Pet", "Animal"), ("Puppy",)),
        Label("dog", 60.0, ("Mammal", "Animal"), (), (box,)),
    ]
    (dog,) = combine(labels)
    assert dog.label == "Dog"
    assert abs(dog.confidence - 88.0) < 1e-9  # 1 - 0.3 * 0.4: never averaged down
    assert dog.parents == ("Pet", "Animal", "Mammal")
    assert dog.aliases == ("Puppy",) and dog.instances == (box,)


def test_the_floor_drops_weak_labels_and_weak_boxes() -> None:
    weak_box = {"bbox": {"left": 0, "top": 0, "width": 1, "height": 1}, "confidence": 30.0}
    strong_box = {"bbox": {"left": 0, "top": 0, "width": 1, "height": 1}, "confidence": 80.0}
    labels = [
        Label("Vehicle", 4.15),
        Label("Stopwatch", 1.1),
        Label("Animal", 99.0),
        Label("Dog", 80.0, ("Animal",), instances=(weak_box, strong_box)),
    ]
    kept = above_floor(labels, 50.0)
    assert [lb.label for lb in kept] == ["Dog", "Animal"]  # the leaf first, then its parent
    assert kept[0].instances == (strong_box,)
    assert [lb.label for lb in finish(labels, 0.0)] == ["Dog", "Vehicle", "Stopwatch", "Animal"]


def test_uncountable_labels_are_labels_of_the_vocabulary() -> None:
    vocabulary = load_vocabulary()
    assert "clothing" in vocabulary.uncountable
    assert all(vocabulary.term(name) is not None for name in vocabulary.uncountable)
