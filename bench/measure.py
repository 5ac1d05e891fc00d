"""Runs one command as a whole process and measures it from outside: wall
time, CPU time, and memory of the process and everything it starts.

Targets are judged on high-water marks the kernel keeps exactly, which cost
the measured process nothing:

- `max_proc_peak_mb`: the largest peak RSS of any single process in the tree
  (ru_maxrss from wait4; covers every process that was reaped). Linux
  carries a process's peak across exec, so a child forked from the harness
  starts at the harness's own peak: the harness therefore stays small (data
  is generated in subprocesses) and records its peak as `harness_peak_mb`.
- `cgroup_max_usage_mb`: when a memory cgroup can be created (v1 or v2), the
  command runs in its own, and this is the cgroup's peak charge
  (memory.max_usage_in_bytes, or memory.peak on v2): every physical page
  counted once however many processes map it, page cache the command wrote
  included.

A sampler thread also reads /proc every `interval` seconds (default 50 ms)
for figures the kernel keeps no mark of: the root's VmHWM while it runs
(`root_peak_mb`), the largest sum of RSS over the tree (`rss_sum_peak_mb`,
which counts pages shared copy-on-write once per process) and the cgroup's
anonymous + mapped-file memory (`unique_peak_mb`). Sampling is an observer
effect on a 2-core machine: every 5 ms it took 10% of a core (0.44 s of
harness CPU in a 4.4 s run, bench/profile/sampler_cost.py), so it is kept
coarse and informational."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1 << 20


@dataclass
class Measurement:
    argv: list[str]
    exit_code: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0                # user + system, of the root and its reaped descendants
    user_s: float = 0.0
    sys_s: float = 0.0
    minflt: int = 0                   # minor page faults (copy-on-write after fork among them)
    root_peak_mb: float = 0.0
    max_proc_peak_mb: float = 0.0
    rss_sum_peak_mb: float = 0.0
    unique_peak_mb: float | None = None
    cgroup_max_usage_mb: float | None = None
    max_procs: int = 0                # most processes seen at one sample
    samples: int = 0
    timed_out: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode()
    except OSError:
        return None


def _tree(root: int) -> list[int]:
    """The root and its descendants, found through the children files."""
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            text = _read(f"/proc/{pid}/task/{tid}/children")
            if text:
                stack.extend(int(c) for c in text.split())
    return pids


def _rss_bytes(pid: int) -> int:
    text = _read(f"/proc/{pid}/statm")
    if not text:
        return 0
    return int(text.split()[1]) * PAGE


def _hwm_bytes(pid: int) -> int:
    text = _read(f"/proc/{pid}/status")
    if not text:
        return 0
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class Cgroup:
    """A throwaway memory cgroup below the one this process is in, or None
    when the hierarchy is not writable (then only /proc sampling is used)."""

    def __init__(self, path: Path, v2: bool):
        self.path = path
        self.v2 = v2

    @classmethod
    def create(cls, name: str) -> Cgroup | None:
        if os.environ.get("CAIRN_BENCH_NO_CGROUP"):
            return None
        text = _read("/proc/self/cgroup") or ""
        for line in text.splitlines():
            _, controllers, rel = line.split(":", 2)
            if "memory" in controllers.split(","):
                base, v2 = Path("/sys/fs/cgroup/memory") / rel.lstrip("/"), False
                break
        else:
            rel = next((ln.split(":", 2)[2] for ln in text.splitlines() if ln.startswith("0::")), None)
            if rel is None:
                return None
            base, v2 = Path("/sys/fs/cgroup") / rel.lstrip("/"), True
        path = base / name
        try:
            path.mkdir()
        except OSError:
            return None
        if not (path / "cgroup.procs").exists():
            path.rmdir()
            return None
        return cls(path, v2)

    def join_fn(self):
        """For Popen(preexec_fn=...): moves the child into the cgroup before exec."""
        procs = str(self.path / "cgroup.procs").encode()

        def join() -> None:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)

        return join

    def unique_bytes(self) -> int:
        """Anonymous + mapped-file memory charged: each page once."""
        text = _read(str(self.path / "memory.stat")) or ""
        values = {}
        for line in text.splitlines():
            k, _, v = line.partition(" ")
            values[k] = int(v or 0)
        if self.v2:
            return values.get("anon", 0) + values.get("file_mapped", 0)
        return values.get("rss", 0) + values.get("mapped_file", 0)

    def max_usage_bytes(self) -> int | None:
        text = _read(str(self.path / ("memory.peak" if self.v2 else "memory.max_usage_in_bytes")))
        return int(text) if text and text.strip().isdigit() else None

    def remove(self) -> None:
        # Stragglers (if any) go back to the parent so the group can go.
        parent = self.path.parent / "cgroup.procs"
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                for pid in (_read(str(self.path / "cgroup.procs")) or "").split():
                    with contextlib.suppress(OSError):
                        parent.write_text(pid)
                time.sleep(0.01)


class _Sampler(threading.Thread):
    def __init__(self, root: int, interval: float, cgroup: Cgroup | None):
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.cgroup = cgroup
        self.stop = threading.Event()
        self.rss_sum_peak = 0
        self.root_hwm = 0
        self.unique_peak = 0
        self.max_procs = 0
        self.samples = 0

    def run(self) -> None:
        while not self.stop.is_set():
            pids = _tree(self.root)
            total = sum(_rss_bytes(p) for p in pids)
            hwm = _hwm_bytes(self.root)
            if hwm:
                self.root_hwm = max(self.root_hwm, hwm)
            self.rss_sum_peak = max(self.rss_sum_peak, total)
            self.max_procs = max(self.max_procs, len(pids))
            if self.cgroup is not None:
                self.unique_peak = max(self.unique_peak, self.cgroup.unique_bytes())
            self.samples += 1
            self.stop.wait(self.interval)


def run_measured(argv: list[str], *, cwd: Path, env: dict[str, str], log: Path,
                 interval: float = 0.05, timeout: float = 3600, use_cgroup: bool = True
                 ) -> Measurement:
    """Runs argv to completion (stdout and stderr to `log`) and measures it."""
    cgroup = Cgroup.create(f"cairn-bench-{os.getpid()}-{time.monotonic_ns()}") if use_cgroup else None
    m = Measurement(argv=list(argv))
    try:
        with open(log, "ab") as out:
            start = time.perf_counter()
            # preexec_fn is safe here: the previous measurement's sampler and
            # timer threads have been joined, so no other thread holds a lock.
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=cgroup.join_fn() if cgroup else None)  # noqa: PLW1509
            sampler = _Sampler(proc.pid, interval, cgroup)
            sampler.start()
            timer = threading.Timer(timeout, _kill_group, (proc.pid, m))
            timer.start()
            _, status, usage = os.wait4(proc.pid, 0)
            m.wall_s = time.perf_counter() - start
            timer.cancel()
            timer.join()
            sampler.stop.set()
            sampler.join()
            proc.returncode = os.waitstatus_to_exitcode(status)
        m.exit_code = proc.returncode
        m.cpu_s = usage.ru_utime + usage.ru_stime
        m.user_s, m.sys_s, m.minflt = usage.ru_utime, usage.ru_stime, usage.ru_minflt
        m.max_proc_peak_mb = usage.ru_maxrss * 1024 / MB
        # A forked child starts with the harness's peak as its ru_maxrss floor.
        m.extra["harness_peak_mb"] = _hwm_bytes(os.getpid()) / MB
        m.root_peak_mb = sampler.root_hwm / MB
        m.rss_sum_peak_mb = sampler.rss_sum_peak / MB
        m.max_procs = sampler.max_procs
        m.samples = sampler.samples
        if cgroup is not None:
            m.unique_peak_mb = sampler.unique_peak / MB
            peak = cgroup.max_usage_bytes()
            m.cgroup_max_usage_mb = peak / MB if peak is not None else None
    finally:
        if cgroup is not None:
            cgroup.remove()
    return m


def _kill_group(pid: int, m: Measurement) -> None:
    m.timed_out = True
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def dir_bytes(path: Path) -> int:
    """Apparent size of every file under path (0 if absent)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
