"""Walk a trail and its checkpoints; name the first bad record and what is wrong.

Pure over iterables, so the same code checks the live store and an archive file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from moorage.audit.chain import CheckpointError, open_checkpoint

__all__ = ["Problem", "Row", "VerifyResult", "verify_rows"]


class Row(NamedTuple):
    """One stored record: its sequence number, canonical body, previous hash and hash."""

    seq: int
    body: str
    prev: str
    hash: str


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with a chain: where (``seq``), what kind, and details."""

    seq: int
    kind: str  # changed | missing | reordered | truncated | checkpoint
    detail: str


@dataclass(frozen=True)
class VerifyResult:
    """What verification saw: counts, the range of records, and the first problem."""

    records: int
    checkpoints: int
    first: int
    last: int
    problem: Problem | None

    @property
    def ok(self) -> bool:
        """Whether the chain and every checkpoint verified."""
        return self.problem is None


def verify_rows(
    rows: Iterable[Row | tuple[int, str, str, str]],
    checkpoints: Iterable[tuple[int, str]],
    keys: dict[bytes, tuple[str, Ed25519PublicKey]],
    anchor: tuple[int, str],
) -> VerifyResult:
    """``anchor`` is (seq, hash) of the record before the first row (0, GENESIS when
    nothing was archived). Rows must come in ``seq`` order."""
    notes = sorted(checkpoints)
    sizes = {size for size, _ in notes}
    heads: dict[int, str] = {}
    seen: dict[str, int] = {}  # stored hash -> seq, to tell "reordered" from "changed"
    expected, prev = anchor[0] + 1, anchor[1]
    problem: Problem | None = None
    bad_prev = ""
    count = 0
    sha = hashlib.sha256
    fromhex = bytes.fromhex
    for seq, body, row_prev, stored in rows:  # plain tuples: this loop is the hot path
        count += 1
        seen[stored] = seq
        if problem is not None:
            continue
        if seq != expected:
            kind = "missing" if seq > expected else "reordered"
            problem = Problem(expected, kind, f"record {expected} is missing: the trail goes from "
                              f"{expected - 1} to {seq}" if kind == "missing"
                              else f"record {seq} appears after {expected - 1}")  # fmt: skip
            continue
        computed = sha(fromhex(row_prev) + body.encode()).hexdigest()
        if computed != stored:
            problem = Problem(seq, "changed", f"record {seq} was changed: its content does not "
                              "match its hash")  # fmt: skip
            continue
        if row_prev != prev:
            problem = Problem(seq, "reordered", "")  # detail once every hash is known
            bad_prev = row_prev
            continue
        prev = computed
        if seq in sizes:
            heads[seq] = computed
        expected += 1
    last = expected - 1
    if problem is not None and problem.kind == "reordered" and not problem.detail:
        follows = seen.get(bad_prev)
        problem = Problem(problem.seq, "reordered", f"record {problem.seq} does not follow record "
                          f"{problem.seq - 1}" + (f" (it follows record {follows})" if follows else
                                                  ": a record before it was changed and re-hashed,"
                                                  " or records were swapped"))  # fmt: skip
    for size, note in notes:
        try:
            cp = open_checkpoint(note, keys)
        except CheckpointError as exc:
            bad = Problem(size, "checkpoint", f"checkpoint at {size}: {exc}")
            problem = _first(problem, bad)
            continue
        if cp.size != size:
            problem = _first(
                problem, Problem(size, "checkpoint", f"checkpoint stored at {size} says {cp.size}")
            )
        elif size > last and (problem is None or problem.seq > size):
            problem = _first(problem, Problem(last + 1, "truncated",
                             f"the trail ends at record {last} but checkpoint {size} was signed: "
                             f"records {last + 1}..{size} were removed"))  # fmt: skip
        elif size in heads and heads[size] != cp.root:
            problem = _first(problem, Problem(size, "changed", f"records up to {size} differ from "
                                              f"what checkpoint {size} signed"))  # fmt: skip
    return VerifyResult(count, len(notes), anchor[0] + 1, last, problem)


def _first(a: Problem | None, b: Problem) -> Problem:
    return b if a is None or b.seq < a.seq else a
