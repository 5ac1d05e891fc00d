"""The sidecar: one per run, the Ray driver. The engine sends it tasks over a
socketpair with the worker's framing (cpp/exec/sidecar_launcher.h); it runs
each on a slot actor of the step's resource shape, writes the task's output
and result into the pipes the engine handed over, as they arrive, and
reports how the task ended: its status, or `lost` when its node or actor
died. It decides nothing: retries, timeouts and records stay the engine's.

Started by backends/launch.py as `python -m cairn.backends.ray.sidecar CONFIG`."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from typing import Any


def _loopback_only(address: str) -> None:
    """Ray turns a loopback cluster address into this machine's outward
    address before connecting, which fails for a cluster bound to loopback
    (a test's, or a laptop's). For such an address, ask Ray to stay on
    loopback (the variable affects only that choice in a driver)."""
    host = address.rpartition(":")[0].strip("[]") or address
    if host in ("localhost", "::1") or host.startswith("127."):
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


if __name__ == "__main__":
    _loopback_only(json.loads(sys.argv[1])["address"])

import ray  # noqa: E402 - after the address is known

from ... import _core
from ...stores import CachedStore, S3Config, remote_from_env
from ..launch import forwarded_credentials
from .pool import Pool, Unschedulable
from .resources import Request, request_of
from .slot import CACHE_VAR, SlotActor

CLOSE_WAIT_S = 20.0
KILL_ANSWER_S = 2.0
# Settings, not secrets: they travel in the slot actor's arguments.
FORWARDED_ENV = (CACHE_VAR, "CAIRN_PACKAGE_SUFFIXES")
_DEATHS = tuple(getattr(ray.exceptions, n) for n in (
    "RayActorError", "ActorDiedError", "ActorUnavailableError", "WorkerCrashedError",
    "NodeDiedError", "ObjectLostError", "OwnerDiedError") if hasattr(ray.exceptions, n))


class Sidecar:
    def __init__(self, config: dict[str, Any], sock: socket.socket):
        self.config = config
        self.sock = sock
        self.send_lock = threading.Lock()
        with open(config["spec"]) as f:
            self.spec = json.load(f)
        self.requests = {s["name"]: request_of(s) for s in self.spec["steps"]}
        self.timeouts = {s["name"]: float(s.get("options", {}).get("timeout_s", 0) or 0)
                         for s in self.spec["steps"]}
        remote = remote_from_env()
        self.store = CachedStore(config["root"], remote)  # the head's store, for pushing inputs
        s3 = S3Config.from_env()
        env = {**s3.env(), **{k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}}
        # The environment travels in the actor's arguments, not a runtime_env:
        # then any pooled Ray worker can host the actor, instead of a new
        # process started for that environment (seconds on the first task).
        # AWS keys only if the user opted in, and then as an object in Ray's
        # object store, never in the arguments or a runtime_env, which Ray's
        # dashboard and state API show.
        secrets = forwarded_credentials()
        self.setup = {"package": config["package"], "flow_file": config["flow_file"], "spec": self.spec,
                      "with_decorators": config.get("with_decorators", []),
                      "spec_digest": _core.digest([json.dumps(self.spec, sort_keys=True).encode()]),
                      "env": env, "credentials": ray.put(secrets) if secrets else None}
        self.actor_cls = ray.remote(SlotActor)
        self.pools: dict[str, Pool] = {}
        self.pools_lock = threading.Lock()
        self.running: dict[int, Any] = {}   # key -> the actor running it
        self.closed = False
        self.stopped = threading.Event()
        self._nodes: tuple[float, list[dict[str, Any]]] = (0.0, [])

    # --- cluster ------------------------------------------------------------
    def nodes(self) -> list[dict[str, Any]]:
        at, nodes = self._nodes
        if time.monotonic() - at > 2.0:
            nodes = ray.nodes()
            self._nodes = (time.monotonic(), nodes)
        return nodes

    def make_actor(self, request: Request) -> Any:
        return self.actor_cls.options(
            **request.actor_options(), max_concurrency=4, max_restarts=0,
            scheduling_strategy="SPREAD",
        ).remote(self.setup)

    def pool(self, request: Request) -> Pool:
        with self.pools_lock:
            if request.key not in self.pools:
                self.pools[request.key] = Pool(request, self.make_actor, self.config["pending_timeout"])
            return self.pools[request.key]

    # --- the engine's side ----------------------------------------------------
    def reply(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\n"
        with self.send_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                pass  # the engine is gone; it no longer listens

    def serve(self) -> None:
        threading.Thread(target=self._shrink_loop, daemon=True).start()
        buf = b""
        fd_groups: collections.deque[list[int]] = collections.deque()
        while True:
            data, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 3)
            if fds:
                fd_groups.append(list(fds))
            if not data:
                break
            buf += data
            while len(buf) >= 8:
                hlen, plen = struct.unpack_from("<II", buf)
                if len(buf) < 8 + hlen + plen:
                    break
                header = json.loads(buf[8:8 + hlen])
                payload = buf[8 + hlen:8 + hlen + plen]
                buf = buf[8 + hlen + plen:]
                if header.get("kill"):
                    self.kill(int(header["key"]))
                    continue
                args = (int(header["key"]), header.get("env") or {}, payload, fd_groups.popleft())
                threading.Thread(target=self.run_task, daemon=True, args=args).start()
        self.close()

    def kill(self, key: int) -> None:
        actor = self.running.get(key)
        if actor is not None:  # never a task that already finished
            actor.kill_task.remote(key)
            # A slot that cannot kill it in time (its node is going away) is
            # killed itself, so the task ends as lost well within the engine's
            # bound on answering a kill (SidecarLauncher::kKillWaitS).
            timer = threading.Timer(KILL_ANSWER_S, self._kill_slot, args=(key, actor))
            timer.daemon = True
            timer.start()

    def _kill_slot(self, key: int, actor: Any) -> None:
        if self.running.get(key) is actor and not self.closed:
            with contextlib.suppress(Exception):  # already gone, or Ray is shutting down
                ray.kill(actor, no_restart=True)

    def run_task(self, key: int, env: dict[str, str], payload: bytes, fds: list[int]) -> None:
        actor = None
        pool = None
        try:
            meta = json.loads(payload.partition(b"\0")[0])
            step = meta["step"]
            self.push_inputs(meta)
            pool = self.pool(self.requests[step])
            try:
                actor = pool.acquire(self.nodes, lambda: self.closed)
            except Unschedulable as e:
                _write_all(fds[1], f"step '{step}' cannot run on Ray: {e}\n".encode())
                self.reply({"key": key, "status": 1 << 8})
                return
            self.running[key] = actor
            self.reply({"key": key, "started": True})  # the step's clock starts now
            report = ray.get(actor.run.remote(key, env, payload, self.timeouts.get(step, 0.0)))
            while True:
                done, out, status, result, timed_out = report
                for stream, data in out:
                    _write_all(fds[stream - 1], data)
                if done:
                    break
                report = ray.get(actor.more.remote(key))
            _write_all(fds[2], result)
            self.running.pop(key, None)
            pool.release(actor)
            if status is None:
                self.reply({"key": key, "lost": True})
            else:
                self.reply({"key": key, "status": status, "timed_out": timed_out})
        except _DEATHS as e:
            self.running.pop(key, None)
            if pool is not None and actor is not None:
                pool.discard(actor)
            _write_all(fds[1], f"cairn: the task's Ray node or slot died: {type(e).__name__}\n".encode())
            self.reply({"key": key, "lost": True})
        except Exception:  # noqa: BLE001 - anything else is ours: the attempt is lost, not the run
            self.running.pop(key, None)
            if pool is not None and actor is not None:
                pool.discard(actor)
            _write_all(fds[1], f"cairn: the Ray sidecar failed this task:\n{traceback.format_exc()}".encode())
            self.reply({"key": key, "lost": True})
        finally:
            for fd in fds:
                os.close(fd)

    def push_inputs(self, meta: dict[str, Any]) -> None:
        """Blobs the task reads that only this machine has (parameters, a
        local step's outputs, a resumed run's): into S3 before it starts."""
        records = list(meta.get("params", []))
        for inp in meta.get("inputs", []):
            records += inp.get("artifacts", [])
        for frame in meta.get("stack", []):
            if frame.get("artifact"):
                records.append(frame["artifact"])
        inline = {d for d, _ in meta.get("blobs", [])}
        for rec in records:
            digest = rec[1]
            if digest not in inline and self.store.local.has(digest):
                self.store.push(digest)

    def _shrink_loop(self) -> None:
        while not self.stopped.wait(5.0):
            with self.pools_lock:
                pools = list(self.pools.values())
            for p in pools:
                p.shrink(time.monotonic())

    def close(self) -> None:
        """The engine is done (or gone): stop every task on every node."""
        self.closed = True
        self.stopped.set()
        for key in list(self.running):
            self.kill(key)
        with self.pools_lock:
            pools = list(self.pools.values())
        actors = [a for p in pools for a in p.close()]
        # Wait until Ray has them dead, so that when the run ends no slot, fork
        # server or task of it is left on any node (they die with their actor).
        ends = [a.ready.remote() for a in actors]
        if ends:
            ray.wait(ends, num_returns=len(ends), timeout=CLOSE_WAIT_S)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BrokenPipeError:
            return  # the engine stopped reading this task
        view = view[n:]


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's to handle
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    _core.die_with_parent(config["parent"])
    sock = socket.socket(fileno=config["fd"])
    try:
        ray.init(address=config["address"], logging_level="ERROR", log_to_driver=False,
                 namespace=f"cairn-{os.getpid()}")
        sidecar = Sidecar(config, sock)
    except Exception as e:  # noqa: BLE001 - one line for the user, the run does not start
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        sock.sendall(json.dumps({"error": f"cannot use the Ray cluster at {config['address']}: "
                                          f"{message}"}).encode() + b"\n")
        return 1
    sock.sendall(json.dumps({"ready": True, "nodes": len(ray.nodes())}).encode() + b"\n")
    try:
        sidecar.serve()
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
