import threading
from pathlib import Path

from imagedex.queue.sqlite import SqliteQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, max_receive_count: int = 3) -> tuple[SqliteQueue, Clock]:
    clock = Clock()
    return SqliteQueue(tmp_path / "q.sqlite3", max_receive_count, clock=clock), clock


def test_receive_hides_then_delete_removes(tmp_path: Path) -> None:
    queue, _clock = make(tmp_path)
    ids = [queue.send(f"m{i}") for i in range(5)]
    first = queue.receive(max_messages=3, visibility_timeout=30)
    assert [m.body for m in first] == ["m0", "m1", "m2"]
    assert all(m.receive_count == 1 for m in first)
    second = queue.receive(max_messages=10, visibility_timeout=30)
    assert [m.body for m in second] == ["m3", "m4"]
    assert queue.receive(max_messages=10) == []
    assert queue.stats().in_flight == 5
    queue.delete([m.receipt for m in first])
    assert queue.stats().in_flight == 2
    assert {m.id for m in first + second} == set(ids)


def test_message_reappears_after_visibility_timeout_as_if_worker_died(tmp_path: Path) -> None:
    queue, clock = make(tmp_path)
    queue.send("x")
    (m1,) = queue.receive(visibility_timeout=30)
    clock.now += 29
    assert queue.receive() == []
    clock.now += 2
    (m2,) = queue.receive(visibility_timeout=30)
    assert m2.id == m1.id and m2.receive_count == 2 and m2.receipt != m1.receipt
    queue.delete([m1.receipt])  # a stale receipt deletes nothing
    assert queue.stats().in_flight == 1


def test_dead_letter_after_max_receives_keeps_last_error(tmp_path: Path) -> None:
    queue, _clock = make(tmp_path, max_receive_count=2)
    queue.send("poison")
    (m,) = queue.receive()
    queue.release(m.receipt, "boom 1")
    (m,) = queue.receive()
    assert m.receive_count == 2
    queue.release(m.receipt, "boom 2")
    assert queue.receive() == []
    (dead,) = queue.dead_letters()
    assert (dead.body, dead.error, dead.receive_count) == ("poison", "boom 2", 2)
    assert queue.stats().dead == 1


def test_dead_letter_when_worker_keeps_dying(tmp_path: Path) -> None:
    queue, clock = make(tmp_path, max_receive_count=2)
    queue.send("crashy")
    for _ in range(2):
        assert len(queue.receive(visibility_timeout=10)) == 1
        clock.now += 11
    assert queue.receive() == []
    (dead,) = queue.dead_letters()
    assert "not deleted after 2 receives" in dead.error


def test_release_with_delay_and_extend(tmp_path: Path) -> None:
    queue, clock = make(tmp_path)
    queue.send("slow")
    (m,) = queue.receive(visibility_timeout=10)
    queue.extend(m.receipt, 100)
    clock.now += 50
    assert queue.receive() == []
    queue.release(m.receipt, "try later", delay=20)
    clock.now += 10
    assert queue.receive() == []
    clock.now += 11
    (again,) = queue.receive()
    assert again.receive_count == 2


def test_immediate_dead_letter_and_redrive(tmp_path: Path) -> None:
    queue, _clock = make(tmp_path)
    queue.send("bad")
    (m,) = queue.receive()
    queue.dead_letter(m.receipt, "ImageDecodeError: not an image")
    assert queue.stats() == queue.stats().__class__(visible=0, in_flight=0, dead=1)
    (dead,) = queue.dead_letters()
    assert queue.redrive([dead.id]) == 1
    (back,) = queue.receive()
    assert back.body == "bad" and back.receive_count == 1
    assert queue.stats().dead == 0


def test_queue_survives_reopen(tmp_path: Path) -> None:
    queue, _ = make(tmp_path)
    queue.send("durable")
    queue.close()
    reopened = SqliteQueue(tmp_path / "q.sqlite3")
    assert [m.body for m in reopened.receive()] == ["durable"]


def test_concurrent_receivers_never_get_the_same_message(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "q.sqlite3")
    for i in range(200):
        queue.send(str(i))
    seen: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        q = SqliteQueue(tmp_path / "q.sqlite3")
        while True:
            batch = q.receive(max_messages=7, visibility_timeout=300)
            if not batch:
                return
            with lock:
                seen.extend(m.body for m in batch)
            q.delete([m.receipt for m in batch])

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen, key=int) == [str(i) for i in range(200)]
