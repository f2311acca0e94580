"""Every area's schema as numbered migrations, the only place tables are defined.

A migration is one script written once for both engines: ``{real}`` is a 64-bit float
(SQLite ``REAL``, PostgreSQL ``DOUBLE PRECISION``; PostgreSQL's ``REAL`` has 24 bits,
too few for a timestamp), ``{int}`` a 64-bit integer, ``{text}`` text. Version 1 of
each area is the schema the area had before the store existed (``CREATE ... IF NOT
EXISTS``), so a data folder written by an earlier Moorage is migrated in place.

Append a migration to change a schema; never edit one that has shipped.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AREAS", "Migration", "latest", "render"]


@dataclass(frozen=True)
class Migration:
    """One step of an area's schema: its version, what it does, and its script."""

    version: int
    description: str
    script: str


_TYPES = {
    "sqlite": {"real": "REAL", "int": "INTEGER", "text": "TEXT"},
    "postgresql": {"real": "DOUBLE PRECISION", "int": "BIGINT", "text": "TEXT"},
}


def render(script: str, kind: str) -> str:
    """``script`` with its type placeholders spelled for ``kind``."""
    return script.format(**_TYPES[kind])


AREAS: dict[str, tuple[Migration, ...]] = {
    "audit": (
        Migration(1, "hash-chained records, signed checkpoints, the archive anchor", """
CREATE TABLE IF NOT EXISTS records (seq {int} PRIMARY KEY, body {text} NOT NULL,
                                    prev {text} NOT NULL, hash {text} NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (size {int} PRIMARY KEY, note {text} NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key {text} PRIMARY KEY, value {text} NOT NULL);
"""),
        Migration(2, "the coordinator row that sequences appends from every gateway, batch by batch", """
CREATE TABLE IF NOT EXISTS head (id {int} PRIMARY KEY CHECK (id = 1), seq {int} NOT NULL,
                                 hash {text} NOT NULL);
"""),
        Migration(3, "name the key that signed each checkpoint", """
ALTER TABLE checkpoints ADD COLUMN signer {text} NOT NULL DEFAULT '';
"""),
    ),
    "exceptions": (
        Migration(1, "exceptions to policy rules, requested and approved", """
CREATE TABLE IF NOT EXISTS exceptions (id {text} PRIMARY KEY, rule {text} NOT NULL, team {text},
    image {text}, reason {text} NOT NULL, requester {text} NOT NULL, requested_at {real} NOT NULL,
    duration {int} NOT NULL, status {text} NOT NULL, approver {text}, approved_at {real},
    expires {real});
"""),
    ),
    "certs": (
        Migration(1, "issued certificates, service accounts, spent and enrolment tokens", """
CREATE TABLE IF NOT EXISTS certs (serial {text} PRIMARY KEY, "user" {text} NOT NULL,
    provider {text} NOT NULL, subject {text} NOT NULL, groups {text} NOT NULL, teams {text} NOT NULL,
    roles {text} NOT NULL, public_key {text} NOT NULL, issued_at {real} NOT NULL,
    expires_at {real} NOT NULL, revoked_at {real}, revoked_by {text}, reason {text});
CREATE TABLE IF NOT EXISTS service_accounts (name {text} PRIMARY KEY, team {text} NOT NULL,
    roles {text} NOT NULL, lifetime {int} NOT NULL, created_by {text} NOT NULL,
    created_at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS spent_tokens (digest {text} PRIMARY KEY, until {real} NOT NULL);
CREATE TABLE IF NOT EXISTS enrolment_tokens (digest {text} PRIMARY KEY, account {text} NOT NULL,
    expires_at {real} NOT NULL, used_at {real});
"""),
    ),
    "cluster": (
        Migration(1, "enrolments, attestation requests, revocations, trust roots, pins", """
CREATE TABLE IF NOT EXISTS enrolments (node_id {text} PRIMARY KEY, swarm_id {text} NOT NULL,
    by_user {text} NOT NULL, at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS requests (id {text} PRIMARY KEY, node_id {text} NOT NULL,
    classes {text} NOT NULL, evidence {text} NOT NULL, duration {int} NOT NULL,
    requester {text} NOT NULL, requested_at {real} NOT NULL, status {text} NOT NULL,
    approver {text}, approved_at {real}, expires_at {real}, envelope {text}, signer {text},
    revoked_by {text}, revoked_at {real});
CREATE TABLE IF NOT EXISTS roots (digest {text} PRIMARY KEY, swarm_id {text} NOT NULL,
    at {real} NOT NULL, how {text} NOT NULL);
CREATE TABLE IF NOT EXISTS pins (node_id {text} NOT NULL, class {text} NOT NULL, at {real} NOT NULL,
    reason {text} NOT NULL, PRIMARY KEY (node_id, class));
"""),
    ),
    "gateways": (
        Migration(1, "the gateways sharing the store: the policy each runs, when each was last seen", """
CREATE TABLE IF NOT EXISTS gateways (name {text} PRIMARY KEY, policy_version {text} NOT NULL,
    started_at {real} NOT NULL, seen_at {real} NOT NULL);
"""),
    ),
    "compliance": (
        Migration(1, "continuous compliance: each running object's latest result, and the sweeps", """
CREATE TABLE IF NOT EXISTS results (object_id {text} PRIMARY KEY, kind {text} NOT NULL,
    name {text} NOT NULL, team {text} NOT NULL, owner {text} NOT NULL, image {text} NOT NULL,
    result_key {text} NOT NULL, status {text} NOT NULL, violations {text} NOT NULL,
    evaluated_at {real} NOT NULL, seen_at {real} NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (id {int} PRIMARY KEY, at {real} NOT NULL, took {real} NOT NULL,
    policy_version {text} NOT NULL, db_version {text} NOT NULL, objects {int} NOT NULL,
    recomputed {int} NOT NULL, failing {int} NOT NULL, reason {text} NOT NULL);
"""),
    ),
}  # fmt: skip
"""Each area's migrations, in order."""


def latest(area: str) -> int:
    """The schema version of ``area`` this Moorage writes."""
    return AREAS[area][-1].version
