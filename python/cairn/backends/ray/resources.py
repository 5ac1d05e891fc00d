"""A step's Ray resource request, from @resources, @kubernetes/@batch and
@ray (the largest value of each wins, as in Metaflow), and whether the
cluster has a node that could ever hold it. Plain data: no Ray import."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    cpu: float = 1.0
    gpu: float = 0.0
    memory_mb: float = 0.0
    custom: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return json.dumps([self.cpu, self.gpu, self.memory_mb, sorted(self.custom.items()),
                           sorted(self.labels.items())])

    def needs(self) -> dict[str, float]:
        """In Ray's units (memory in bytes)."""
        out = {"CPU": self.cpu, **self.custom}
        if self.gpu:
            out["GPU"] = self.gpu
        if self.memory_mb:
            out["memory"] = self.memory_mb * 1024 * 1024
        return out

    def actor_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"num_cpus": self.cpu, "num_gpus": self.gpu}
        if self.memory_mb:
            options["memory"] = int(self.memory_mb * 1024 * 1024)
        if self.custom:
            options["resources"] = dict(self.custom)
        if self.labels:
            options["label_selector"] = dict(self.labels)
        return options

    def describe(self) -> str:
        parts = [f"cpu={_n(self.cpu)}", f"gpu={_n(self.gpu)}"]
        if self.memory_mb:
            parts.append(f"memory={_n(self.memory_mb)} MB")
        parts += [f"{k}={_n(v)}" for k, v in sorted(self.custom.items())]
        parts += [f"label {k}={v}" for k, v in sorted(self.labels.items())]
        return ", ".join(parts)


def request_of(step: dict[str, Any]) -> Request:
    options = step.get("options", {})
    sources = [options.get(k) or {} for k in ("resources", "kubernetes", "batch", "ray")]

    def largest(name: str, default: float) -> float:
        values = [float(s[name]) for s in sources if s.get(name) is not None]
        return max(values) if values else default

    ray_options = options.get("ray") or {}
    return Request(cpu=largest("cpu", 1.0), gpu=largest("gpu", 0.0), memory_mb=largest("memory", 0.0),
                   custom=dict(ray_options.get("resources") or {}),
                   labels=dict(ray_options.get("label_selector") or {}))


def slots_on(node: dict[str, Any], request: Request) -> int:
    """How many of `request` the node holds when empty (0: it never can)."""
    for k, v in request.labels.items():
        if (node.get("Labels") or {}).get(k) != v:
            return 0
    total = node.get("Resources") or {}
    counts = []
    for name, amount in request.needs().items():
        if amount <= 0:
            continue
        counts.append(int(total.get(name, 0) // amount))
    return min(counts) if counts else 64


def capacity(nodes: list[dict[str, Any]], request: Request) -> int:
    return sum(slots_on(n, request) for n in nodes if n.get("Alive"))


def describe_cluster(nodes: list[dict[str, Any]]) -> str:
    out = []
    for n in nodes:
        if not n.get("Alive"):
            continue
        res = {k: v for k, v in (n.get("Resources") or {}).items()
               if not k.startswith("node:") and k != "object_store_memory"}
        if "memory" in res:
            res["memory"] = f"{res['memory'] / 2**20:.0f} MB"
        shown = ", ".join(f"{k}={_n(v) if isinstance(v, float) else v}" for k, v in sorted(res.items()))
        labels = {k: v for k, v in (n.get("Labels") or {}).items() if not k.startswith("ray.io/")}
        label_text = f" labels {labels}" if labels else ""
        out.append(f"node {str(n.get('NodeID', '?'))[:8]}: {shown}{label_text}")
    return "; ".join(out) or "no live node"


def _n(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)
