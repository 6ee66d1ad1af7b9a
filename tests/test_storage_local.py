import hashlib
from pathlib import Path

import pytest

from imagedex.errors import InvalidKeyError, ObjectNotFoundError
from imagedex.storage import open_store


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    return open_store((tmp_path / "photos").as_uri())


def test_put_get_head_list_delete(store) -> None:  # type: ignore[no-untyped-def]
    info = store.put("a/b c+é.jpg", b"hello", "image/jpeg", {"title": "Hello"})
    assert store.bucket == "photos"
    assert info.etag == "5d41402abc4b2a76b9719d911017c592"  # md5("hello"), as S3 reports it
    assert store.get("a/b c+é.jpg") == b"hello"
    head = store.head("a/b c+é.jpg")
    assert (head.size, head.metadata, head.content_type) == (5, {"title": "Hello"}, "image/jpeg")
    assert [o.key for o in store.list()] == ["a/b c+é.jpg"]
    assert [o.key for o in store.list("b")] == []
    assert store.location("a/b c+é.jpg").startswith("file://")
    store.delete("a/b c+é.jpg")
    with pytest.raises(ObjectNotFoundError):
        store.get("a/b c+é.jpg")
    with pytest.raises(ObjectNotFoundError):
        store.head("a/b c+é.jpg")


def test_etag_follows_changes_made_outside_imagedex(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store.put("x.jpg", b"one")
    (tmp_path / "photos" / "x.jpg").write_bytes(b"two, longer")
    expected = hashlib.md5(b"two, longer").hexdigest()
    assert store.head("x.jpg").etag == expected
    assert store.head("x.jpg").size == len(b"two, longer")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../escape.jpg",
        "a/../../escape.jpg",
        "/etc/passwd",
        "a//b.jpg",
        "a\\b.jpg",
        "x\x00.jpg",
        ".imagedex-meta/x",
        "./a.jpg",
        "a" * 1100,
    ],
)
def test_hostile_keys_are_refused(store, key: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidKeyError):
        store.put(key, b"x")
    assert not (tmp_path / "escape.jpg").exists()


def test_symlink_out_of_bucket_is_refused(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (tmp_path / "photos" / "link.jpg").symlink_to(secret)
    with pytest.raises(InvalidKeyError):
        store.get("link.jpg")
