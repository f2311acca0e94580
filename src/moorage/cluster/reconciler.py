"""The reconciler: assumes someone edits the cluster behind Moorage's back.

It sweeps on an interval and whenever a node event arrives (events carry no diff
and no caller, so each one only wakes a sweep). A sweep compares every node's
``io.moorage.*`` labels, role, availability and trust root with the store, and:

- sets the labels back to the projection of the store (removing a hand-made
  attestation label, restoring a removed one, dropping what expired or was revoked);
- pins ``node.id!=<id>`` on every service of a class whose label it removed, so the
  exclusion sticks even if the label comes back;
- drains a paused node that still runs tasks of a class it isn't attested for
  (swarmkit's constraint enforcer leaves paused nodes alone);
- writes an audit record for each correction, saying whether it was a change made
  outside Moorage or the store's own (expiry, revocation).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

from moorage.cluster.placement import ATTESTED, ServiceView, moorage_labels, projected_labels
from moorage.cluster.trust import ClusterError, ClusterTrust
from moorage.cluster.views import Engine, NodeView, SwarmView

__all__ = ["Reconciler"]

log = logging.getLogger("moorage.cluster")

Record = Callable[[str, str, str, dict[str, Any]], Awaitable[None]]  # (kind, object, reason, summary)
ROTATION_WINDOW = 900.0  # a rotation through Moorage may take this long to show


class Reconciler:
    """Keeps the cluster's nodes and services in line with the store (see the module)."""

    def __init__(
        self,
        trust: ClusterTrust,
        engine: Engine,
        record: Record,
        interval: float = 5.0,
        events: Callable[[], AsyncIterator[bytes]] | None = None,
    ) -> None:
        self.trust = trust
        self.engine = engine
        self.record = record
        self.interval = interval
        self.events = events
        self._wake = asyncio.Event()
        self._projected: dict[str, dict[str, str]] = {}  # node -> labels Moorage last set or saw agree
        self.sweeps = 0
        trust.wake = self.wake

    def wake(self) -> None:
        """Sweep now rather than at the next interval (a change went through Moorage)."""
        self._wake.set()

    async def run(self) -> None:
        """Sweep until cancelled."""
        watcher = asyncio.ensure_future(self._watch()) if self.events is not None else None
        try:
            while True:
                self._wake.clear()
                try:
                    await self.sweep()
                except (ClusterError, OSError) as exc:
                    log.debug("cluster sweep skipped: %s", exc)
                except Exception:  # keep reconciling; the next sweep tries again
                    log.exception("cluster sweep failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _watch(self) -> None:
        assert self.events is not None
        while True:
            try:
                async for _ in self.events():
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("node event stream ended: %s", exc)
            await asyncio.sleep(1)

    # ------------------------------------------------------------------ sweep
    async def sweep(self) -> list[str]:
        """One pass; returns what it changed (for tests and logs)."""
        self.sweeps += 1
        changed: list[str] = []
        swarm = await self.trust.swarm(self.engine)
        await self._roots(swarm, changed)
        nodes = await self.trust.nodes(self.engine)
        if not self.trust.store.enrolled():
            await self._enrol_own_node(swarm, nodes, changed)
        removed: dict[str, set[str]] = {}  # class -> nodes that lost its label
        for node in nodes:
            await self._node(node, swarm, removed, changed)
        # Drain before pinning: a pin rolls the class's services, and the check must
        # see the tasks a paused node still runs.
        for node in nodes:
            if node.availability == "pause":
                await self._drain_if_needed(node, swarm, changed)
        now = self.trust.clock()
        for cls, ids in removed.items():
            for nid in ids:
                self.trust.store.pin(nid, cls, now, "label removed by the reconciler")
        await self._services(changed)
        return changed

    async def _enrol_own_node(self, swarm: SwarmView, nodes: list[NodeView], changed: list[str]) -> None:
        """With nothing enrolled yet, the manager Moorage stands in front of is: it is
        the engine Moorage trusts with every request, not a node that joined by token.
        Only the first time: an operator's later choices are never overridden."""
        status, info = await self.engine.call_json("GET", "/info")
        own = str(
            ((info if status == 200 and isinstance(info, dict) else {}).get("Swarm") or {}).get("NodeID", "")
        )
        if (
            own
            and any(n.id == own for n in nodes)
            and self.trust.store.enrol(own, swarm.id, "moorage", self.trust.clock())
        ):
            await self.record(
                "cluster.enrol",
                own,
                "enrolled the manager Moorage stands in front of (the first enrolment of this cluster)",
                {"node": own},
            )
            changed.append(f"enrolled {own}")

    async def _roots(self, swarm: SwarmView, changed: list[str]) -> None:
        store, now = self.trust.store, self.trust.clock()
        roots = store.roots()
        if not swarm.trust_root or swarm.trust_root in roots:
            return
        if not roots:
            store.accept_root(swarm.trust_root, swarm.id, now, "first seen")
            await self.record(
                "cluster.trust-root",
                swarm.id,
                "the swarm's trust root, first seen by Moorage",
                {"trust_root": swarm.trust_root, "how": "first seen"},
            )
            changed.append(f"accepted trust root {swarm.trust_root}")
            return
        expected = self.trust.rotation_expected
        if expected is not None and now - expected[0] < ROTATION_WINDOW:
            store.accept_root(
                swarm.trust_root, swarm.id, now, f"CA rotation through Moorage by {expected[1]}"
            )
            await self.record(
                "cluster.trust-root",
                swarm.id,
                f"new trust root after a CA rotation by {expected[1]}",
                {"trust_root": swarm.trust_root, "how": "rotation through Moorage"},
            )
            changed.append(f"accepted trust root {swarm.trust_root}")
            return
        # Not accepted: attestations bound to roots Moorage knows stop counting for
        # nodes that follow this one; say so once.
        if getattr(self, "_warned_root", None) != swarm.trust_root:
            self._warned_root = swarm.trust_root
            await self.record(
                "cluster.drift",
                swarm.id,
                "changed outside Moorage: the swarm's CA was changed without moorage cluster "
                "rotate-ca; attestations stop counting on nodes that follow the new root",
                {"trust_root": swarm.trust_root},
            )

    async def _node(
        self, node: NodeView, swarm: SwarmView, removed: dict[str, set[str]], changed: list[str]
    ) -> None:
        enrolled = node.id in self.trust.store.enrolled()
        validity = self.trust.validity(node, swarm)
        want = projected_labels(enrolled, validity.classes)
        have = moorage_labels(node.labels)
        if have == want:
            self._projected[node.id] = want
            return
        before = self._projected.get(node.id)
        reasons = []
        for key in sorted(set(have) | set(want)):
            if have.get(key) == want.get(key):
                continue
            cls = key[len(ATTESTED) :] if key.startswith(ATTESTED) else ""
            if key in want:
                how = "restored" if before is not None and before.get(key) == want[key] else "projected"
                reasons.append(f"{how} {key}={want[key]}")
            elif (before is not None and key in before and before[key] == have[key]) or (
                before is None and cls in validity.problems
            ):
                # Moorage's own projection withdrawn: the store no longer vouches for it
                # (after a restart, when nothing was remembered, the store's reason says so)
                why = validity.problems.get(cls) if cls else None
                reasons.append(f"removed {key}: {why or ('not attested' if cls else 'not enrolled')}")
                if cls:
                    removed.setdefault(cls, set()).add(node.id)
            else:
                reasons.append(f"removed {key}={have[key]} (changed outside Moorage)")
                if cls:
                    removed.setdefault(cls, set()).add(node.id)
        by_hand = any("outside" in r for r in reasons)
        outside = (before is not None and have != before) or (before is None and by_hand)
        labels = {k: v for k, v in node.labels.items() if k not in have}
        labels.update(want)
        spec = dict(node.spec)
        spec["Labels"] = labels
        status, doc = await self.engine.call_json(
            "POST", f"/nodes/{quote(node.id, safe='')}/update?version={node.version}", body=spec
        )
        if status != 200:
            log.warning("could not correct node %s (%s): %s", node.id, status, doc)
            return
        self._projected[node.id] = want
        reason = ("changed outside Moorage: " if outside else "") + "; ".join(reasons)
        await self.record(
            "cluster.drift" if outside else "cluster.project",
            node.id,
            reason,
            {"node": node.id, "hostname": node.hostname, "before": have, "after": want},
        )
        changed.append(f"{node.hostname or node.id}: {reason}")

    async def _services(self, changed: list[str]) -> None:
        """Every class service carries ``node.id!=X`` for the nodes pinned out of its
        class, and loses the pins an approval lifted."""
        pins = self.trust.store.pins()
        released = set(self.trust.released)
        if not pins and not released:
            return
        status, docs = await self.engine.call_json("GET", "/services")
        if status != 200 or not isinstance(docs, list):
            return
        failed: set[str] = set()
        for doc in docs:
            spec = doc.get("Spec") or {}
            cons = ((spec.get("TaskTemplate") or {}).get("Placement") or {}).get("Constraints") or []
            version = int((doc.get("Version") or {}).get("Index", 0))
            view = ServiceView(
                str(doc.get("ID")), str(spec.get("Name", "")), version, tuple(map(str, cons)), spec
            )
            want = sorted({f"node.id!={n}" for c in view.classes for n in pins.get(c, ())})
            missing = [w for w in want if w not in view.constraints]
            lifted = {f"node.id!={n}" for n, c in released if c in view.classes} - set(want)
            kept = [c for c in view.constraints if c not in lifted]
            if not missing and len(kept) == len(view.constraints):
                continue
            new = json.loads(json.dumps(spec))
            placement = new.setdefault("TaskTemplate", {}).setdefault("Placement", {})
            placement["Constraints"] = [*kept, *missing]
            st, answer = await self.engine.call_json(
                "POST", f"/services/{quote(view.id, safe='')}/update?version={view.version}", body=new
            )
            if st != 200:
                log.warning("could not pin service %s (%s): %s", view.name, st, answer)
                failed |= view.classes  # its lifted pins are tried again at the next sweep
                continue
            dropped = sorted(set(view.constraints) - set(kept))
            what = ", ".join([*(f"+ {m}" for m in missing), *(f"- {d}" for d in dropped)])
            await self.record(
                "cluster.pin",
                view.id,
                f"service {view.name}: {what}",
                {"service": view.name, "added": missing, "removed": dropped},
            )
            changed.append(f"{view.name}: {what}")
        self.trust.released -= {(n, c) for n, c in released if c not in failed}

    async def _drain_if_needed(self, node: NodeView, swarm: SwarmView, changed: list[str]) -> None:
        node = await self.trust.node(self.engine, node.id)  # its version moved if its labels were set
        valid = self.trust.validity(node, swarm).classes
        flt = quote(json.dumps({"node": [node.id], "desired-state": ["running"]}))
        status, tasks = await self.engine.call_json("GET", f"/tasks?filters={flt}")
        if status != 200 or not isinstance(tasks, list) or not tasks:
            return
        services = {str(t.get("ServiceID")) for t in tasks}
        wrong: list[str] = []
        for sid in services:
            st, doc = await self.engine.call_json("GET", f"/services/{quote(sid, safe='')}")
            if st != 200 or not isinstance(doc, dict):
                continue
            cons = (((doc.get("Spec") or {}).get("TaskTemplate") or {}).get("Placement") or {}).get(
                "Constraints"
            )
            view = ServiceView(
                sid, str((doc.get("Spec") or {}).get("Name", "")), 0, tuple(map(str, cons or [])), {}
            )
            if view.classes - valid:
                wrong.append(view.name)
        if not wrong:
            return
        spec = dict(node.spec)
        spec["Availability"] = "drain"
        status, doc = await self.engine.call_json(
            "POST", f"/nodes/{quote(node.id, safe='')}/update?version={node.version}", body=spec
        )
        if status != 200:
            log.warning("could not drain node %s (%s): %s", node.id, status, doc)
            return
        reason = (
            f"drained paused node {node.hostname or node.id}: it runs {', '.join(sorted(wrong))} "
            "without a valid attestation, and the constraint enforcer leaves paused nodes alone"
        )
        await self.record("cluster.drain", node.id, reason, {"node": node.id, "services": sorted(wrong)})
        changed.append(reason)
