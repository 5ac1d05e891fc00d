"""What `cairn ui` shows, as plain dicts: runs (filtered, paged), a run
(graph, step states, timeline), a step's tasks (sorted, filtered, paged), a
task (attempts, artifacts, cards), artifact previews, log tails and cards.

Read-only. Everything is looked up by id: run ids, task ids and attempts are
numbers, a step must be one of the run's steps, an artifact one of the
task's; files (logs, live cards) are named from those, never from the
request."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, NamedTuple

from .. import _core, serializers
from ..cards.client import card_records
from ..cards.page import graph_svg
from ..cards.preview import preview_html
from ..cards.runtime import CARD_PREFIX
from ..errors import CairnException, NotFoundError

TIMELINE_MAX = 1000   # bars in a run's timeline
_LOG_NAME = re.compile(r"^(\d+)\.(\d+)\.(out|err)$")
_LIVE_NAME = re.compile(r"^(\d+)\.(\d+)\.(\d+)\.html$")


class Row(NamedTuple):
    """One task in listings (a recorded one, or a running one found by its log)."""

    task_id: int
    step: str
    status: str
    started_at: float
    finished_at: float
    attempts: int
    foreach_index: int

    def duration(self, now: float) -> float:
        return _duration(self.started_at, self.finished_at, now)


class BadRequest(CairnException):
    """A request the UI cannot answer as asked (HTTP 400)."""


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{what} must be a number, got {value!r}") from None


def _duration(start: float, end: float, now: float) -> float:
    if not start:
        return 0.0
    return max(0.0, (end or now) - start)


class UIData:
    """One datastore, read-only, shared by the server's threads (calls into
    the datastore are serialised). Finished runs' task lists are cached."""

    def __init__(self, root: str):
        if not os.path.exists(os.path.join(root, "cairn.db")):
            raise NotFoundError(f"no cairn datastore at {root} (run a flow first, or set CAIRN_HOME)")
        self.root = root
        self._ds = _core.Datastore(root, readonly=True)
        self._files = _core.ArtifactStore(root)
        self._lock = threading.Lock()
        # What is derived from a finished run never changes: its task list,
        # its page and its steps' task rows, by (run id, what).
        self._memo: OrderedDict[tuple[int, str], Any] = OrderedDict()

    def _memoized(self, run: Any, what: str, make: Callable[[], Any]) -> Any:
        if run.status == "running":
            return make()
        key = (run.run_id, what)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = make()
            while len(self._memo) > 64:
                self._memo.popitem(last=False)
        return found

    # -- runs -------------------------------------------------------------

    def runs(self, flow: str = "", status: str = "", tag: str = "", user: str = "",
             offset: int = 0, limit: int = 50) -> dict[str, Any]:
        offset, limit = max(0, _int(offset, "offset")), min(500, max(1, _int(limit, "limit")))
        with self._lock:
            flows = self._ds.flows()
            records = [r for f in ([flow] if flow else flows) if f in flows for r in self._ds.runs(f)]
        if status:
            records = [r for r in records if r.status == status]
        if user:
            records = [r for r in records if r.user == user]
        if tag:
            records = [r for r in records if tag in r.tags or tag in r.system_tags]
        records.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
        now = time.time()
        page = [self._run_row(r, now) for r in records[offset:offset + limit]]
        return {"flows": flows, "total": len(records), "offset": offset, "limit": limit, "runs": page}

    @staticmethod
    def _run_row(r: Any, now: float) -> dict[str, Any]:
        return {"flow": r.flow, "run_id": r.run_id, "status": r.status, "user": r.user,
                "tags": list(r.tags), "system_tags": list(r.system_tags), "created_at": r.created_at,
                "finished_at": r.finished_at, "duration": _duration(r.created_at, r.finished_at, now),
                "origin_run_id": r.origin_run_id}

    def _run(self, flow: str, run_id: Any) -> Any:
        with self._lock:
            return self._ds.get_run(flow, _int(run_id, "run id"))

    def _tasks(self, run: Any) -> list[Row]:
        """The run's recorded tasks as Rows (each record's fields read once:
        every read of a record's field converts it anew)."""

        def fetch() -> list[Row]:
            with self._lock:
                records = self._ds.tasks(run.run_id)
            return [Row(t.task_id, t.step, t.status, t.started_at, t.finished_at, len(t.attempts),
                        t.foreach_index) for t in records]

        return self._memoized(run, "tasks", fetch)  # type: ignore[no-any-return]

    def _running(self, run: Any, steps: list[str], recorded: set[int]) -> list[dict[str, Any]]:
        """Tasks of a running run that are not recorded yet: those with a log."""
        if run.status != "running":
            return []
        found: dict[int, dict[str, Any]] = {}
        for step in steps:
            folder = os.path.join(self.root, "logs", str(run.run_id), step)
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                m = _LOG_NAME.match(name)
                if not m or int(m.group(1)) in recorded:
                    continue
                task_id, attempt = int(m.group(1)), int(m.group(2))
                started = os.stat(os.path.join(folder, name)).st_mtime
                prev = found.get(task_id)
                if prev is None or attempt > prev["attempt"]:
                    found[task_id] = {"task_id": task_id, "step": step, "attempt": attempt,
                                      "status": "running", "started_at": started}
        return sorted(found.values(), key=lambda t: t["task_id"])

    def run(self, flow: str, run_id: Any) -> dict[str, Any]:
        run = self._run(flow, run_id)
        return self._memoized(run, "page", lambda: self._run_page(run))  # type: ignore[no-any-return]

    def _run_page(self, run: Any) -> dict[str, Any]:
        spec = json.loads(run.graph_json or "{}")
        steps = spec.get("steps", [])
        names = [s["name"] for s in steps]
        # The engine's own "_parameters" task is not one of the flow's steps.
        steps_of_flow = set(names)
        tasks = [t for t in self._tasks(run) if t.step in steps_of_flow]
        running = self._running(run, names, {t.task_id for t in tasks})
        now = time.time()
        summary = {n: {"total": 0, "succeeded": 0, "failed": 0, "running": 0, "retried": 0} for n in names}
        for t in tasks:
            s = summary[t.step]
            s["total"] += 1
            # A recorded row is running from its start until it finishes.
            s["succeeded" if t.status == "succeeded" else "running" if t.status == "running" else "failed"] += 1
            s["retried"] += t.attempts > 1
        for r in running:
            summary[r["step"]]["total"] += 1
            summary[r["step"]]["running"] += 1
        for s in summary.values():
            s["state"] = ("running" if s["running"] else "failed" if s["failed"]
                          else "succeeded" if s["total"] else "pending")
        ordered = sorted(tasks, key=lambda t: (t.started_at, t.task_id))[:TIMELINE_MAX]
        timeline = [{"task_id": t.task_id, "step": t.step, "status": t.status, "start": t.started_at,
                     "end": t.finished_at or now, "attempts": t.attempts} for t in ordered]
        timeline += [{"task_id": r["task_id"], "step": r["step"], "status": "running",
                      "start": r["started_at"], "end": now, "attempts": r["attempt"] + 1} for r in running]
        return {
            **self._run_row(run, now), "params": json.loads(run.params_json or "{}"),
            "steps": [{"name": s["name"], "foreach": bool(s.get("foreach")), "is_join": bool(s.get("is_join")),
                       **summary[s["name"]]} for s in steps],
            "graph_svg": graph_svg(steps), "timeline": timeline, "timeline_total": len(tasks) + len(running),
            "running_tasks": sorted(running + [
                {"task_id": t.task_id, "step": t.step, "attempt": t.attempts - 1, "status": "running",
                 "started_at": t.started_at} for t in tasks if t.status == "running"], key=lambda r: r["task_id"]),
            "task_count": len(tasks), "now": now,
        }

    def step_tasks(self, flow: str, run_id: Any, step: str, sort: str = "id", order: str = "asc",
                   status: str = "", offset: int = 0, limit: int = 50) -> dict[str, Any]:
        run = self._run(flow, run_id)
        names = [s["name"] for s in json.loads(run.graph_json or "{}").get("steps", [])]
        if step not in names:
            raise NotFoundError(f"run {flow}/{run.run_id} has no step named {step!r}")
        if sort not in ("id", "duration", "start"):
            raise BadRequest(f"sort must be id, duration or start, got {sort!r}")
        offset, limit = max(0, _int(offset, "offset")), min(500, max(1, _int(limit, "limit")))
        rows = self._memoized(run, f"step:{step}", lambda: self._step_rows(run, step))
        if status:
            rows = [r for r in rows if r.status == status]
        now = time.time()
        if sort == "duration":
            rows = sorted(rows, key=lambda r: (r.duration(now), r.task_id), reverse=order == "desc")
        elif sort == "start" or order == "desc":
            field = 3 if sort == "start" else 0
            rows = sorted(rows, key=lambda r: (r[field], r.task_id), reverse=order == "desc")
        page = [{"task_id": r.task_id, "status": r.status, "started_at": r.started_at,
                 "finished_at": r.finished_at, "duration": r.duration(now), "attempts": r.attempts,
                 "foreach_index": r.foreach_index} for r in rows[offset:offset + limit]]
        return {"step": step, "total": len(rows), "offset": offset, "limit": limit, "tasks": page}

    def _step_rows(self, run: Any, step: str) -> list[Row]:
        """The step's tasks by id: recorded ones, then running ones."""
        tasks = self._tasks(run)
        rows = [t for t in tasks if t.step == step]
        rows += [Row(r["task_id"], step, "running", r["started_at"], 0.0, r["attempt"] + 1, -1)
                 for r in self._running(run, [step], {t.task_id for t in tasks})]
        rows.sort(key=lambda r: r.task_id)
        return rows

    # -- tasks ------------------------------------------------------------

    def _task(self, run: Any, task_id: Any) -> Any:
        with self._lock:
            return self._ds.get_task(run.run_id, _int(task_id, "task id"))

    def _running_task(self, run: Any, task_id: Any) -> dict[str, Any] | None:
        names = [s["name"] for s in json.loads(run.graph_json or "{}").get("steps", [])]
        tid = _int(task_id, "task id")
        return next((t for t in self._running(run, names, set()) if t["task_id"] == tid), None)

    def task(self, flow: str, run_id: Any, task_id: Any) -> dict[str, Any]:
        run = self._run(flow, run_id)
        try:
            t = self._task(run, task_id)
        except NotFoundError:
            live = self._running_task(run, task_id)
            if live is None:
                raise
            return {"flow": flow, "run_id": run.run_id, "task_id": live["task_id"], "step": live["step"],
                    "status": "running", "pathspec": f"{flow}/{run.run_id}/{live['step']}/{live['task_id']}",
                    "attempts": [{"attempt": live["attempt"], "status": "running", "reason": "",
                                  "started_at": live["started_at"], "finished_at": 0}],
                    "artifacts": [], "cards": self._live_cards(run, live["task_id"], live["attempt"]),
                    "exception": None, "started_at": live["started_at"], "finished_at": 0}
        result = json.loads(t.result_json or "{}")
        return {
            "flow": flow, "run_id": run.run_id, "task_id": t.task_id, "step": t.step, "status": t.status,
            "pathspec": f"{flow}/{run.run_id}/{t.step}/{t.task_id}", "foreach_index": t.foreach_index,
            "origin": t.origin, "started_at": t.started_at, "finished_at": t.finished_at,
            "attempts": [{"attempt": a.attempt, "status": a.status, "exit_code": a.exit_code, "signal": a.signal,
                          "reason": a.reason, "started_at": a.started_at, "finished_at": a.finished_at}
                         for a in t.attempts],
            "artifacts": [{"name": a.name, "type": a.type, "size": a.size} for a in t.artifacts
                          if not a.name.startswith(CARD_PREFIX)],
            "cards": [{"index": int(a.name[len(CARD_PREFIX):]), "type": [*a.type.split("/"), "", ""][1],
                       "id": a.type.split("/", 2)[2] if a.type.count("/") >= 2 else "",
                       "url": f"/card/{flow}/{run.run_id}/{t.task_id}/{a.name[len(CARD_PREFIX):]}"}
                      for a in card_records(t)]
                     or (self._live_cards(run, t.task_id, t.attempts[-1].attempt) if t.status == "running" else []),
            "exception": result.get("exception"),
        }

    def _live_cards(self, run: Any, task_id: int, attempt: int) -> list[dict[str, Any]]:
        try:
            names = os.listdir(os.path.join(self.root, "live", str(run.run_id)))
        except OSError:
            return []
        cards = []
        for name in sorted(names):
            m = _LIVE_NAME.match(name)
            if m and int(m.group(1)) == task_id and int(m.group(2)) == attempt:
                cards.append({"index": int(m.group(3)), "type": "live", "id": "",
                              "url": f"/card/{run.flow}/{run.run_id}/{task_id}/live/{attempt}/{m.group(3)}"})
        return cards

    def _blob(self, digest: str) -> list[memoryview]:
        try:
            return self._files.get(digest)
        except NotFoundError:
            with self._lock:
                return [memoryview(self._ds.get_blob(digest))]

    def artifact_preview(self, flow: str, run_id: Any, task_id: Any, name: str) -> str:
        t = self._task(self._run(flow, run_id), task_id)
        rec = next((a for a in t.artifacts if a.name == name and not name.startswith(CARD_PREFIX)), None)
        if rec is None:
            raise NotFoundError(f"task {t.step}/{t.task_id} has no artifact {name!r}")
        try:
            value = serializers.loads(self._blob(rec.digest), rec.encoding)
        except Exception as e:  # noqa: BLE001 - e.g. a class this process cannot import
            return f'<div class="cairn-error">cannot load the value here: {type(e).__name__}: {e}</div>'
        return preview_html(value)

    def card(self, flow: str, run_id: Any, task_id: Any, index: Any) -> str:
        t = self._task(self._run(flow, run_id), task_id)
        name = f"{CARD_PREFIX}{_int(index, 'card index')}"
        rec = next((a for a in t.artifacts if a.name == name), None)
        if rec is None:
            raise NotFoundError(f"task {t.step}/{t.task_id} has no card {index}")
        return bytes(self._blob(rec.digest)[0]).decode("utf-8", errors="replace")

    def live_card(self, flow: str, run_id: Any, task_id: Any, attempt: Any, index: Any) -> str:
        run = self._run(flow, run_id)
        name = f"{_int(task_id, 'task id')}.{_int(attempt, 'attempt')}.{_int(index, 'card index')}.html"
        try:
            with open(os.path.join(self.root, "live", str(run.run_id), name), encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFoundError("the live card is gone: the task has finished; reload for the stored card") from None

    def log(self, flow: str, run_id: Any, task_id: Any, stream: str = "out", attempt: Any = None,
            offset: Any = 0, limit: int = 1 << 20) -> dict[str, Any]:
        """Bytes of a task's stdout or stderr from `offset`; offset -1 (or
        past the end of a shortened file) gives the last `limit` bytes."""
        if stream not in ("out", "err"):
            raise BadRequest(f"stream must be out or err, got {stream!r}")
        run = self._run(flow, run_id)
        t = self.task(flow, run.run_id, task_id)
        attempt_no = _int(attempt, "attempt") if attempt not in (None, "") else t["attempts"][-1]["attempt"] \
            if t["attempts"] else 0
        run_part, step, tid = str(run.run_id), t["step"], str(t["task_id"])
        if t.get("origin"):  # a cloned task's logs are its origin's
            _, run_part, step, tid = t["origin"].split("/")
        path = os.path.join(self.root, "logs", run_part, step, f"{tid}.{attempt_no}.{stream}")
        offset = _int(offset, "offset")
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0
        if offset < 0 or offset > size:
            offset = max(0, size - limit)
        data = b""
        if size > offset:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(min(limit, size - offset))
        return {"text": data.decode("utf-8", errors="replace"), "offset": offset + len(data), "size": size,
                "attempt": attempt_no, "running": t["status"] == "running"}
