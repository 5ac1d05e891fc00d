"""A 3-node local Ray cluster for tests, every node on 127.0.0.1: a head
with {"head": 1}, a node declaring one GPU and a label, a plain node. Torn
down by the fixture (cluster.shutdown(), then whatever of its processes
remain, by pid): never `ray stop`, never a kill by name."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

LOOPBACK = "127.0.0.1"


@dataclass
class LocalCluster:
    cluster: Any
    address: str
    head_id: str
    gpu_id: str
    plain_id: str
    extra: list[Any] = field(default_factory=list)

    def pids(self) -> list[int]:
        """Every process the cluster's nodes started (raylets, GCS, agents, workers' parents)."""
        pids = []
        nodes = [self.cluster.head_node, *self.cluster.worker_nodes]
        for node in nodes:
            for infos in node.all_processes.values():
                pids += [i.process.pid for i in infos]
        return pids


def _node_args(**kw: Any) -> dict[str, Any]:
    return {"node_ip_address": LOOPBACK, "include_dashboard": False, "object_store_memory": 150 << 20,
            **kw}


@contextmanager
def local_cluster() -> Iterator[LocalCluster]:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args=_node_args(num_cpus=2, resources={"head": 1}))
    started: list[int] = []
    try:
        gpu = cluster.add_node(**_node_args(num_cpus=2, num_gpus=1, labels={"accel": "gpu"}))
        plain = cluster.add_node(**_node_args(num_cpus=2))
        cluster.wait_for_nodes()
        lc = LocalCluster(cluster, cluster.address, cluster.head_node.node_id, gpu.node_id, plain.node_id)
        started = _descendants(lc.pids())
        yield lc
    finally:
        started = sorted(set(started) | set(_descendants(_safe_pids(cluster))))
        cluster.shutdown()
        for pid in started:  # whatever shutdown left behind, by pid
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _safe_pids(cluster: Any) -> list[int]:
    try:
        return LocalCluster(cluster, "", "", "", "").pids()
    except Exception:  # noqa: BLE001
        return []


def _descendants(pids: list[int]) -> list[int]:
    import psutil

    out = set(pids)
    for pid in pids:
        try:
            out.update(c.pid for c in psutil.Process(pid).children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    return sorted(out)


def listening_addresses(pids: list[int]) -> set[str]:
    """The addresses the given processes (and their children) listen on."""
    import psutil

    addrs = set()
    for pid in _descendants(pids):
        try:
            for c in psutil.Process(pid).net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    addrs.add(c.laddr.ip)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return addrs
