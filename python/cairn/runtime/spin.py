"""`python flow.py spin STEP`: run one step again, as it is in the file now,
with the inputs one of its tasks had in a past run (Metaflow 2.19's spin, for
developing a step without re-running the flow).

The task's inputs (its parents' artifacts, the parameters, the foreach and
branch frames it was in) are rebuilt from the datastore, and the step runs in
a child process. Nothing is recorded in the datastore: the artifacts the step
sets are listed, and their values go to a scratch folder removed afterwards;
with --persist, the task goes into a separate datastore, `.cairn_spin` in the
working directory, read with `inspect_spin(".")`."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from typing import Any

from .. import _core
from ..errors import CairnException, NotFoundError, UnknownStepError
from ..graph import spec_for
from ..home import username
from ..metadata_provider import SPIN_DIR
from .run import system_tags


class _ScratchStore:
    """Reads blobs from the datastore, writes them to a scratch folder."""

    def __init__(self, root: str, scratch: str):
        self.reader = _core.ArtifactStore(root)
        self.writer = _core.ArtifactStore(scratch)

    def get(self, digest: str) -> Any:
        try:
            return self.writer.get(digest)
        except NotFoundError:
            return self.reader.get(digest)

    def put(self, segments: Any) -> Any:
        return self.writer.put(segments)


def _record(a: Any) -> list[Any]:
    return [a.name, a.digest, a.size, a.type, a.encoding]


class _Inputs:
    """Rebuilds what the engine sent a task: parents' artifacts and frames."""

    def __init__(self, ds: Any, run_id: int, spec: dict[str, Any]):
        self.ds = ds
        self.tasks = {t.task_id: t for t in ds.tasks(run_id)}
        self.steps = {s["name"]: s for s in spec["steps"]}
        self.blobs: dict[str, bytes] = {}

    def artifacts(self, task: Any) -> list[list[Any]]:
        for a in task.artifacts:  # small blobs live in the database, and travel in the payload
            with contextlib.suppress(NotFoundError):
                self.blobs.setdefault(a.digest, bytes(self.ds.get_blob(a.digest)))
        return [_record(a) for a in task.artifacts]

    def frame(self, task: Any, parent: Any) -> dict[str, Any] | None:
        """The frame a split (`parent`) opened for `task`, or None."""
        spec = self.steps[parent.step]
        if spec["transition"] == "foreach":
            var = spec["foreach"]
            width = json.loads(parent.result_json or "{}").get("foreach_count", 0)
            found = [_record(a) for a in parent.artifacts if a.name == var]
            frame = {"step": parent.step, "task_id": parent.task_id, "index": task.foreach_index,
                     "width": width, "foreach": True, "var": var}
            if found:
                frame["artifact"] = found[0]
                self.artifacts(parent)
            return frame
        if spec["transition"] == "branch":
            return {"step": parent.step, "task_id": parent.task_id, "index": spec["next"].index(task.step),
                    "width": len(spec["next"]), "foreach": False}
        return None

    def stack(self, task: Any) -> list[dict[str, Any]]:
        if not task.parents:
            return []
        parent = self.tasks[task.parents[0]]
        stack = self.stack(parent)
        frame = self.frame(task, parent)
        if frame is not None:
            stack.append(frame)
        if self.steps[task.step]["is_join"]:
            stack = stack[:-1]
        return stack

    def payload(self, task: Any, flow_info: dict[str, Any]) -> dict[str, Any]:
        inputs = []
        for pid in task.parents:
            parent = self.tasks[pid]
            item: dict[str, Any] = {"step": parent.step, "task_id": pid, "artifacts": self.artifacts(parent)}
            if self.steps[task.step]["is_join"]:
                item["frame"] = self.stack(parent)[-1]
            inputs.append(item)
        params = self.tasks.get(0)
        return {
            "flow": flow_info, "run_id": task.run_id, "step": task.step, "task_id": task.task_id,
            "attempt": 0, "fallback": False, "origin_run_id": 0, "max_num_splits": sys.maxsize,
            "params": self.artifacts(params) if params is not None else [],
            "inputs": inputs, "stack": self.stack(task), "blobs": self.blobs,
        }


def _source_task(ds: Any, flow: str, step: str, pathspec: str | None) -> Any:
    if pathspec:
        parts = pathspec.strip("/").split("/")
        if parts and parts[0] == flow:
            parts = parts[1:]
        if len(parts) != 3 or parts[1] != step or not parts[0].isdigit() or not parts[2].isdigit():
            raise CairnException(f"--spin-pathspec expects RUN_ID/{step}/TASK_ID, got '{pathspec}'")
        run = ds.get_run(flow, int(parts[0]))
        found = [t for t in ds.tasks(run.run_id, step) if t.task_id == int(parts[2])]
        if not found:
            raise NotFoundError(f"no task {flow}/{pathspec}")
        return found[0]
    for run in ds.runs(flow, 50):
        finished = [t for t in ds.tasks(run.run_id, step) if t.status != "running"]
        if finished:
            return finished[0]
    raise NotFoundError(f"no past run of {flow} has a task of step '{step}' to take inputs from; "
                        f"run the flow first")


def spin(flow_cls: type, root: str, step_name: str, spin_pathspec: str | None = None,
         persist: bool = False) -> int:
    """Runs `step_name` with the inputs of its task `spin_pathspec`
    (RUN_ID/STEP/TASK_ID; default: the latest run's) and lists what it set;
    `persist` keeps the task in ./.cairn_spin. Returns the exit status."""
    from ..config import read_configs
    from . import task as task_module
    from .run import run_configs

    if not getattr(getattr(flow_cls, step_name, None), "_cairn_step", False):
        raise UnknownStepError(f"spin: flow {flow_cls.__name__} has no step named '{step_name}'")
    ds = _core.Datastore(root, readonly=True)
    source = _source_task(ds, flow_cls.__name__, step_name, spin_pathspec)
    # The flow's configs are those of the run whose task it takes inputs from.
    read_configs(flow_cls, stored=run_configs(flow_cls.__name__, root, source.run_id))
    spec = spec_for(flow_cls)
    inputs = _Inputs(ds, source.run_id, spec)
    with tempfile.TemporaryDirectory(prefix="cairn-spin-") as tmp:
        scratch = os.path.abspath(SPIN_DIR) if persist else tmp
        flow_info = {"root": root, "user": username(), "tags": [], "with_decorators": [],
                     "file": spec["file"]}
        payload = inputs.payload(source, flow_info)
        del ds, inputs
        print(f"Spinning step '{step_name}' with the inputs of "
              f"{flow_cls.__name__}/{source.run_id}/{source.step}/{source.task_id}")
        sys.stdout.flush()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read_end)
                store = _ScratchStore(root, scratch)
                code = task_module.run_task(flow_cls, spec, payload, write_end, store=store)
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as f:
            raw = f.read()
        _, status = os.waitpid(pid, 0)
        text, _, binary = raw.partition(b"\0")
        result = json.loads(text or b"{}")
        if "exception" in result:
            failure = result["exception"]
            raise CairnException(
                f"step '{step_name}' failed: {failure.get('type')}: {failure.get('message')}")
        if os.waitstatus_to_exitcode(status) != 0:
            raise CairnException(f"step '{step_name}' failed: the task exited with status "
                                 f"{os.waitstatus_to_exitcode(status)}")
    inherited = {r[1] for item in payload["inputs"] for r in item["artifacts"]}
    inherited |= {r[1] for r in payload["params"]}
    changed = [r for r in result.get("artifacts", []) if r[1] not in inherited]
    where = "not stored" if not persist else f"kept in {os.path.abspath(SPIN_DIR)}"
    print(f"Step '{step_name}' succeeded; it set {len(changed)} artifact(s) ({where}):")
    for name, _, size, type_name, _ in changed:
        print(f"  {name}  {type_name}  {size} B")
    if persist:
        run_id = _persist(flow_cls.__name__, source, result, binary, payload["blobs"], root)
        print(f"Persisted as {flow_cls.__name__}/{run_id}/{source.step}/{source.task_id}; read it after "
              f"inspect_spin(\"{os.getcwd()}\")")
    return 0


def _persist(flow: str, source: Any, result: dict[str, Any], binary: bytes, inherited_blobs: dict[str, bytes],
             root: str) -> int:
    """Records the spun task, with every artifact it has, in the spin datastore."""
    import time

    offset, blobs = 0, dict(inherited_blobs)
    for digest, length in result.get("blobs", []):
        blobs[digest] = binary[offset:offset + length]
        offset += length
    spin_root = os.path.abspath(SPIN_DIR)
    target = _core.Datastore(spin_root, readonly=False)
    files = _ScratchStore(root, spin_root)
    records, small = [], []
    for name, digest, size, type_name, encoding in result.get("artifacts", []):
        records.append(_core.ArtifactRecord(name, digest, size, type_name, encoding))
        if digest in blobs:
            small.append((digest, blobs[digest]))
        elif not files.writer.has(digest):  # an inherited value: copied, so the spin datastore stands alone
            files.writer.put(files.reader.get(digest))
    user = username()
    origin = f"spin:{flow}/{source.run_id}/{source.step}/{source.task_id}"
    run = target.create_run(flow, user, [*system_tags(user), origin], "{}")
    now = time.time()
    target.record_succeeded_task(run.run_id, source.step, source.task_id, records, small, now, now)
    target.finish_run(run.run_id, "succeeded")
    return int(run.run_id)
