"""Slot pools: per resource shape, the slot actors of this run. A task takes
an idle slot or waits for one; the pool grows while the cluster can hold
more of the shape and shrinks when slots sit idle, so that a finished burst
does not keep holding the cluster's resources."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import ray

from .resources import Request, capacity, describe_cluster

IDLE_S = 30.0  # an idle slot older than this is released


class Unschedulable(Exception):
    """No slot can be had for this request; the message says why."""


class Pool:
    def __init__(self, request: Request, make: Callable[[Request], Any], pending_timeout: float):
        self.request = request
        self.make = make
        self.pending_timeout = pending_timeout
        self.idle: list[tuple[Any, float]] = []
        self.live: set[Any] = set()
        self.creating = 0
        self.starting: set[Any] = set()  # actors asked for, not yet ready
        self.error: str | None = None
        self.cond = threading.Condition()

    def acquire(self, nodes: Callable[[], list[dict[str, Any]]], closed: Callable[[], bool]) -> Any:
        waited_since = time.monotonic()
        with self.cond:
            while True:
                if closed():
                    raise Unschedulable("the run is stopping")
                if self.idle:
                    return self.idle.pop()[0]
                cluster = nodes()
                room = capacity(cluster, self.request)
                if room == 0:
                    raise Unschedulable(
                        f"no node of the Ray cluster can ever provide {self.request.describe()}; "
                        f"the cluster has {describe_cluster(cluster)}")
                if not self.live and self.error:
                    raise Unschedulable(self.error)
                if len(self.live) + self.creating < room:
                    self.creating += 1
                    threading.Thread(target=self._create, daemon=True).start()
                if not self.live and time.monotonic() - waited_since > self.pending_timeout:
                    raise Unschedulable(
                        f"no Ray node could take {self.request.describe()} within "
                        f"{self.pending_timeout:g} s (--ray-pending-timeout); the cluster has "
                        f"{describe_cluster(cluster)}")
                self.cond.wait(0.5)

    def _create(self) -> None:
        actor = None
        try:
            actor = self.make(self.request)
            with self.cond:
                self.starting.add(actor)
            ray.get(actor.ready.remote())
        except Exception as e:  # noqa: BLE001 - reported to the tasks waiting for it
            with self.cond:
                self.starting.discard(actor)
                self.creating -= 1
                self.error = f"a slot for {self.request.describe()} failed to start: {e}"
                self.cond.notify_all()
            if actor is not None:
                _kill(actor)
            return
        with self.cond:
            self.starting.discard(actor)
            self.creating -= 1
            self.live.add(actor)
            self.idle.append((actor, time.monotonic()))
            self.cond.notify_all()

    def release(self, actor: Any) -> None:
        with self.cond:
            if actor in self.live:
                self.idle.append((actor, time.monotonic()))
                self.cond.notify_all()

    def discard(self, actor: Any) -> None:
        """A slot that died (its node, its process): never handed out again."""
        with self.cond:
            self.live.discard(actor)
            self.cond.notify_all()
        _kill(actor)

    def shrink(self, now: float) -> None:
        with self.cond:
            old = [a for a, t in self.idle if now - t > IDLE_S]
            self.idle = [(a, t) for a, t in self.idle if now - t <= IDLE_S]
            for a in old:
                self.live.discard(a)
        for a in old:
            _kill(a)

    def close(self) -> list[Any]:
        """Kills every slot; returns them (to wait for their end)."""
        with self.cond:
            actors = list(self.live | self.starting)
            self.live.clear()
            self.starting.clear()
            self.idle.clear()
            self.cond.notify_all()
        for a in actors:
            _kill(a)
        return actors


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001, S110 - already gone
        pass
