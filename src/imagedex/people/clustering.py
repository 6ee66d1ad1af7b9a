"""Incremental grouping of faces into people (DBSCAN-like, as Immich does).

The rule, for each new face (dlib 128-d descriptors, Euclidean distance):

1. Its neighbours are the stored faces within `max_distance` (0.5).
2. It joins the person owning most of its neighbours when at least `min(join_votes, that
   person's faces)` of them (2) are that person's: one close face of a big person is not enough,
   so one odd face cannot pull a stranger in.
3. Otherwise, if it and its unassigned neighbours number at least `min_faces` (3), they become a
   new person, which then grows like a DBSCAN cluster: each member's unassigned neighbours are
   placed again by rules 2-3.
4. Otherwise it waits, unassigned; a later face near it may complete a group.

A face a person split off a person (`imagedex people split`) never joins that person again:
its neighbours there cast no vote.

0.5 rather than dlib's same-person threshold of 0.6: a wrong join merges two people for good
and chains further strangers in, while a missed one leaves a face waiting or two people to
merge with one command. Memory: the embeddings of every face (512 bytes each) while placing.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imagedex.people.store import PeopleStore

MAX_DISTANCE = 0.5
MIN_FACES = 3
JOIN_VOTES = 2
_CHUNK = 4096  # faces compared per block (bounds the distance matrix)


@dataclass(frozen=True)
class Rule:
    max_distance: float = MAX_DISTANCE
    min_faces: int = MIN_FACES
    join_votes: int = JOIN_VOTES

    def __post_init__(self) -> None:
        if not 0 < self.max_distance < 2:
            raise ValueError("max_distance must be between 0 and 2")
        if self.min_faces < 1 or self.join_votes < 1:
            raise ValueError("min_faces and join_votes must be at least 1")


def _neighbours(matrix: np.ndarray, row: int, max_distance: float) -> np.ndarray:
    """Rows within max_distance of `row`, itself excluded, nearest first."""
    vector = matrix[row]
    found: list[np.ndarray] = []
    dists: list[np.ndarray] = []
    for start in range(0, len(matrix), _CHUNK):
        block = matrix[start : start + _CHUNK]
        distance = np.sqrt(np.maximum(((block - vector) ** 2).sum(axis=1), 0.0))
        close = np.nonzero(distance <= max_distance)[0]
        found.append(close + start)
        dists.append(distance[close])
    rows = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    distance = np.concatenate(dists) if dists else np.zeros(0)
    keep = rows != row
    rows, distance = rows[keep], distance[keep]
    return rows[np.argsort(distance, kind="stable")]


def place_faces(
    store: PeopleStore, db: sqlite3.Connection, face_ids: Sequence[int], rule: Rule | None = None
) -> set[int]:
    """Assign the given (new or waiting) faces to people by the rule above, inside the caller's
    transaction; the ids of the people that gained faces."""
    rule = rule or Rule()
    ids, people, matrix = store.embeddings(db)
    if not len(ids):
        return set()
    row_of = {int(face_id): row for row, face_id in enumerate(ids)}
    sizes = Counter(int(p) for p in people if p >= 0)
    barred = store.barred(db)  # faces a person split off: never placed with those people
    changed: set[int] = set()
    work = deque(row_of[int(f)] for f in face_ids if int(f) in row_of)
    tries = Counter[int]()
    while work:
        row = work.popleft()
        tries[row] += 1
        if people[row] >= 0 or tries[row] > 3:  # placed meanwhile, or tried enough
            continue
        near = _neighbours(matrix, row, rule.max_distance)
        not_them = barred.get(int(ids[row]), set())
        order = [int(p) for p in people[near] if p >= 0 and int(p) not in not_them]
        votes = Counter(order)
        joined: list[int] = []
        person = -1
        if votes:
            # most votes; on a tie the person of the nearest face (near is nearest first)
            person = max(votes, key=lambda p: (votes[p], -order.index(p)))
            if votes[person] >= min(rule.join_votes, sizes[person]):
                joined = [row]
            else:
                person = -1
        if not joined:
            waiting = [int(r) for r in near if people[r] < 0]
            if len(waiting) + 1 >= rule.min_faces:
                person = store.create_person(db)
                joined = [row, *waiting]
        if not joined:
            continue
        store.assign(db, (int(ids[r]) for r in joined), person)
        for r in joined:
            people[r] = person
        sizes[person] += len(joined)
        changed.add(person)
        # their waiting neighbours may now join too (the cluster grows)
        for r in joined:
            work.extend(int(n) for n in _neighbours(matrix, r, rule.max_distance) if people[n] < 0)
    return changed
