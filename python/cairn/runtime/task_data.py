"""What a task reads and writes: the payload the engine sends (decoded),
the artifacts it inherits (loaded lazily, through a per-worker value cache
of foreach lists), the inputs of a join, and the artifacts it saves (small
ones inline in its result, the rest in the ArtifactStore).

The step's life around them (calling it, @catch, the result) is task.py."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from .. import _core, serializers
from ..errors import ArtifactError, CairnError

# Records travel as [name, digest, size, type, encoding].
Record = list


# Values by digest, filled by the worker before it forks (so every child of a
# wide foreach shares the foreach list instead of unpickling it again).
_VALUE_CACHE: OrderedDict[str, Any] = OrderedDict()
_VALUE_CACHE_SIZE = 8


class Frame:
    def __init__(self, ctx: TaskContext, raw: dict[str, Any]):
        self._ctx = ctx
        self.step = raw["step"]
        self.index = raw["index"]
        self.width = raw["width"]
        self.foreach = raw["foreach"]
        self._artifact = raw.get("artifact")
        self._source = ctx.pathspec(self.step, raw.get("task_id", 0))

    @property
    def value(self) -> Any:
        if not self._artifact:
            return None
        values = self._ctx.store_load(self._artifact, self._source)
        try:
            return values[self.index]
        except TypeError:
            return list(values)[self.index]


class InputFlow:
    """One input of a join: its artifacts by attribute, read on demand."""

    def __init__(self, ctx: TaskContext, raw: dict[str, Any], frame: Frame | None):
        self._ctx = ctx
        self._step = raw["step"]
        self._source = ctx.pathspec(raw["step"], raw.get("task_id", 0))
        self._cairn_artifacts = {r[0]: r for r in raw["artifacts"]}
        self._frame = frame
        self._values: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name in self._values:
            return self._values[name]
        rec = self._cairn_artifacts.get(name)
        if rec is None:
            raise AttributeError(f"input from step '{self._step}' has no artifact '{name}'")
        value = self._ctx.store_load(rec, self._source)
        self._values[name] = value
        return value

    @property
    def input(self) -> Any:
        return self._frame.value if self._frame and self._frame.foreach else None

    @property
    def index(self) -> int | None:
        return self._frame.index if self._frame and self._frame.foreach else None

    def __repr__(self) -> str:
        return f"<input from {self._step}: {', '.join(sorted(self._cairn_artifacts))}>"


class Inputs:
    """What a join step receives: iterable in split order, `inputs.<step>`."""

    def __init__(self, flows: list[InputFlow]):
        self._flows = flows
        self._by_step = {f._step: f for f in flows}

    def __iter__(self):
        return iter(self._flows)

    def __len__(self) -> int:
        return len(self._flows)

    def __getitem__(self, i: int) -> InputFlow:
        return self._flows[i]

    def __getattr__(self, name: str) -> InputFlow:
        if name.startswith("__") or name not in self.__dict__.get("_by_step", {}):
            raise AttributeError(f"this join has no input from a step named '{name}'")
        return self._by_step[name]


INLINE_MAX = serializers.INLINE_MAX


def decode_payload(raw: bytes) -> dict[str, Any]:
    """A payload is JSON, then optionally NUL and the small blobs it lists
    as [digest, length] under "blobs"; they become {digest: bytes}."""
    text, sep, binary = raw.partition(b"\0")
    payload = json.loads(text)
    blobs: dict[str, bytes] = {}
    offset = 0
    for digest, length in payload.get("blobs", []) if sep else []:
        blobs[digest] = binary[offset:offset + length]
        offset += length
    payload["blobs"] = blobs
    return payload


def encode_result(result: dict[str, Any], blobs: dict[str, bytes]) -> bytes:
    if not blobs:
        return json.dumps(result).encode()
    result["blobs"] = [[digest, len(data)] for digest, data in blobs.items()]
    return json.dumps(result).encode() + b"\0" + b"".join(blobs.values())


def _segments(rec: Record, blobs: dict[str, bytes], store: Any) -> list[Any]:
    data = blobs.get(rec[1])
    return [memoryview(data)] if data is not None else store.get(rec[1])


class TaskContext:
    def __init__(self, payload: dict[str, Any], spec_step: dict[str, Any], store: Any,
                 flow_name: str = ""):
        self.payload = payload
        self.spec = spec_step
        self.step = payload["step"]
        self.store = store
        self.flow_name = flow_name
        # Where each inherited artifact can be found, for error messages.
        self.sources: dict[str, str] = {}
        self.is_join = bool(spec_step.get("is_join"))
        self.frames = [Frame(self, f) for f in payload["stack"]]
        self.param_names = {r[0] for r in payload["params"]}
        self.inherited: dict[str, Record] = {}
        self.loaded: dict[str, Any] = {}
        self.next_call: tuple[list[str], str | None, str | None] | None = None
        self.num_parallel = 0
        self._cache: dict[str, Any] = {}
        self.blobs: dict[str, bytes] = payload.get("blobs", {})
        self.new_blobs: dict[str, bytes] = {}
        if not self.is_join:
            for inp in payload["inputs"]:
                source = self.pathspec(inp["step"], inp.get("task_id", 0))
                for rec in inp["artifacts"]:
                    self.inherited[rec[0]] = rec
                    self.sources[rec[0]] = source
        for rec in payload["params"]:
            self.inherited[rec[0]] = rec
            self.sources[rec[0]] = self.pathspec("_parameters", 0)

    def pathspec(self, step: str, task_id: Any) -> str:
        return f"{self.flow_name}/{self.payload.get('run_id')}/{step}/{task_id}"

    def store_load(self, rec: Record, source: str = "") -> Any:
        """The value of an artifact record; `source` (the pathspec of a task
        that has it) names the artifact if its blob is missing or corrupt."""
        digest = rec[1]
        if digest in self._cache:
            return self._cache[digest]
        if digest in _VALUE_CACHE:
            value = _VALUE_CACHE[digest]
        else:
            try:
                segments = _segments(rec, self.blobs, self.store)
            except CairnError as e:
                # Never wrong data: the store verified the digest and said no.
                raise type(e)(f"artifact {source or self.step}/{rec[0]}: {e}") from None
            value = serializers.loads(segments, rec[4])
        self._cache[digest] = value
        return value

    def load_inherited(self, name: str) -> Any:
        value = self.store_load(self.inherited[name], self.sources.get(name, ""))
        self.loaded[name] = value
        return value

    def foreach_frames(self) -> list[Frame]:
        return [f for f in self.frames if f.foreach]

    def innermost_foreach(self) -> Frame | None:
        frames = self.foreach_frames()
        return frames[-1] if frames else None

    def inputs(self) -> Inputs:
        # Each input carries the frame of the split this join closes: which
        # branch or foreach item it was.
        return Inputs([
            InputFlow(self, inp, Frame(self, inp["frame"]) if inp.get("frame") else None)
            for inp in self.payload["inputs"]
        ])

    def save(self, name: str, value: Any) -> Record:
        try:
            segments, encoding = serializers.dumps(value)
        except Exception as e:
            raise ArtifactError(
                f"artifact '{name}' of step '{self.step}' could not be pickled "
                f"({type(value).__name__}): {e}"
            ) from e
        if len(segments) == 1 and len(segments[0]) <= INLINE_MAX:
            data = bytes(segments[0])
            digest = _core.digest([data])
            self.new_blobs[digest] = data
            return [name, digest, len(data), serializers.type_name(value), encoding]
        try:
            digest, size, _ = self.store.put(segments)
        except CairnError as e:
            # Typically a full disk; the store has removed its partial file.
            nbytes = sum(memoryview(seg).nbytes for seg in segments)
            raise ArtifactError(
                f"artifact '{name}' of step '{self.step}' ({nbytes} bytes) could not be stored: {e}"
            ) from None
        return [name, digest, size, serializers.type_name(value), encoding]


def preload(payload: dict[str, Any], store: Any) -> None:
    """In the worker, before forking: load the foreach list the task will index."""
    for frame in payload.get("stack", []):
        rec = frame.get("artifact")
        if not rec or rec[1] in _VALUE_CACHE:
            continue
        _VALUE_CACHE[rec[1]] = serializers.loads(_segments(rec, payload.get("blobs", {}), store), rec[4])
        while len(_VALUE_CACHE) > _VALUE_CACHE_SIZE:
            _VALUE_CACHE.popitem(last=False)
