"""The body of a task process: load inputs, call the user's step, save its
artifacts, and report the result to the engine on the result channel.

Runs in a child forked by the worker (the fast path) or in a fresh
interpreter started by `python flow.py step` (the standalone path)."""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import sys
import traceback
from collections import OrderedDict
from typing import Any

from . import _core, metadata_provider, serializers
from .current import current
from .errors import ArtifactError, CairnError, CairnException, ParameterError
from .step_plan import drop_card_records, plan_of

# Records travel as [name, digest, size, type, encoding].
Record = list

_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), frozenset, range)

# Values by digest, filled by the worker before it forks (so every child of a
# wide foreach shares the foreach list instead of unpickling it again).
_VALUE_CACHE: OrderedDict[str, Any] = OrderedDict()
_VALUE_CACHE_SIZE = 8


# Frames of cairn itself, left out of the tracebacks users see.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

# What a hard failure (one the step could not catch itself) is called in the
# StepFailure that @catch stores, by the failed attempt's status.
_CRASH_TYPES = {"timeout": "TaskTimeout", "killed": "TaskKilled", "lost": "TaskLost"}


class StepFailure(Exception):
    """What @catch stores in `self.<var>` once a step failed every attempt
    (Metaflow's MetaflowExceptionWrapper): the exception's type name, message
    and traceback as text, so that it unpickles in any process, with or
    without the modules that defined the original exception."""

    def __init__(self, type: str = "Exception", message: str = "", stacktrace: str = ""):
        super().__init__(type, message, stacktrace)
        self.type = type
        self.message = message
        self.exception = message  # Metaflow's name for the message
        self.stacktrace = stacktrace

    def __reduce__(self) -> tuple[Any, ...]:
        return (StepFailure, (self.type, self.message, self.stacktrace))

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type

    def __repr__(self) -> str:
        return f"StepFailure({str(self)!r})"


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


def _persist(flow: Any, ctx: TaskContext) -> list[Record]:
    out: dict[str, Record] = dict(ctx.inherited)
    for name, value in vars(flow).items():
        if name.startswith(("_cairn", "__")):
            continue
        if name in ctx.loaded and ctx.loaded[name] is value and (
            name in ctx.param_names or isinstance(value, _IMMUTABLE)
        ):
            continue  # read, not changed: keep the inherited record
        out[name] = ctx.save(name, value)
    return list(out.values())


def _outcome(flow: Any, ctx: TaskContext, result: dict[str, Any]) -> None:
    spec = ctx.spec
    transition = spec.get("transition")
    if transition == "end":
        return
    if ctx.next_call is None:
        raise CairnException(f"step '{ctx.step}' finished without calling self.next(...)")
    names, foreach, _ = ctx.next_call
    if names != spec.get("next") or foreach != spec.get("foreach"):
        raise CairnException(
            f"step '{ctx.step}' called self.next({', '.join(names)}) but its source says "
            f"self.next({', '.join(spec.get('next', []))}); transitions must be static"
        )
    if transition == "foreach" and spec.get("parallel"):
        result["foreach_count"] = ctx.num_parallel  # the engine starts them as a gang
    elif transition == "foreach":
        var = spec["foreach"]
        values = getattr(flow, var)
        try:
            count = len(values)
        except TypeError:
            try:
                count = len(list(values))
            except TypeError:
                raise CairnException(
                    f"foreach over self.{var} in step '{ctx.step}': the value is a "
                    f"{type(values).__name__}, which is not iterable; a foreach needs a list "
                    f"(or another iterable) of items"
                ) from None
        limit = ctx.payload.get("max_num_splits", 100)
        if count == 0:
            raise CairnException(f"foreach over self.{var} in step '{ctx.step}' has no items; a foreach needs at least one")
        if count > limit:
            raise CairnException(
                f"foreach over self.{var} in step '{ctx.step}' has {count} items, more than "
                f"--max-num-splits {limit}; raise it with 'run --max-num-splits {count}'"
            )
        result["foreach_count"] = count
    elif transition == "switch":
        var = spec["switch"]["var"]
        value = getattr(flow, var)
        cases = [c[0] for c in spec["switch"]["cases"]]
        for case in cases:
            if case == value or case == str(value):
                result["switch_case"] = case
                break
        else:
            raise CairnException(
                f"switch in step '{ctx.step}': self.{var} is {value!r}, which matches none of "
                f"{', '.join(repr(c) for c in cases)}"
            )


def _catch(flow: Any, ctx: TaskContext, decorators: list[Any], failure: StepFailure) -> None:
    """@catch after the last attempt failed: store the failure in self.<var>
    and take the step's static transition, so that the flow continues."""
    catcher = next((d for d in decorators if d.name == "catch"), None)
    if catcher is not None:
        if catcher.attributes.get("print_exception", True):
            print(f"@catch: step '{ctx.step}' failed; the flow continues. {failure}", file=sys.stderr)
        var = catcher.attributes.get("var")
        if var:
            setattr(flow, var, failure)
    _static_next(ctx, "@catch recovered it after it failed")


def _static_next(ctx: TaskContext, why: str) -> None:
    """Takes the step's transition from its source when its body did not
    run to its self.next (a foreach or switch needs the step's own result)."""
    transition = ctx.spec.get("transition")
    if transition in ("foreach", "switch"):
        raise CairnException(f"step '{ctx.step}' has no self.next to take ({why}): a {transition} "
                             f"needs the step's own result")
    if transition != "end":
        ctx.next_call = (list(ctx.spec.get("next", [])), None, None)


def _no_failure(flow: Any, decorators: list[Any]) -> None:
    """As in Metaflow, @catch's variable is None when the step succeeded, so
    that later steps can test `if self.failure:`."""
    for d in decorators:
        var = d.attributes.get("var") if d.name == "catch" else None
        if var and var not in vars(flow):
            setattr(flow, var, None)


def _fallback_failure(payload: dict[str, Any]) -> StepFailure:
    """The failure of a task whose process died (signal, timeout, exit): the
    engine runs a fallback attempt that only records it."""
    status = payload.get("failure_status", "failed")
    return StepFailure(_CRASH_TYPES.get(status, "TaskFailed"), payload.get("failure", "the step failed"))


def _catches_now(spec_step: dict[str, Any], payload: dict[str, Any]) -> bool:
    """True on the last attempt of a step with @catch: an exception is then
    caught in the task (as in Metaflow), keeping what the step had set."""
    options = spec_step.get("options", {})
    return bool(options.get("catch")) and payload.get("attempt", 0) >= int(options.get("retries", 0))


def _headline(e: BaseException) -> str | None:
    """The title Metaflow prints for a user's MetaflowException subclass
    (cairn's CairnError) that sets `headline`; None for any other exception,
    shown by its class name (cairn's own errors keep their documented
    `TimeoutException: ...` form)."""
    cls = type(e)
    if isinstance(e, CairnError) and cls.__module__.split(".")[0] != "cairn":
        title = getattr(cls, "headline", None)
        if isinstance(title, str) and title:
            return title
    return None


def _user_traceback(e: BaseException) -> str:
    """The traceback from the user's code on: cairn's own frames before it
    are noise. An error raised by cairn itself is shown as its message only.
    An error with a headline ends with `headline: message`, as Metaflow
    prints a MetaflowException, instead of its class name."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    title = _headline(e)
    if title:
        frames = traceback.format_tb(tb) if tb is not None else []
        head = ["Traceback (most recent call last):\n"] if frames else []
        return "".join(head + frames) + f"{title}: {_message(e)}\n"
    if tb is None:
        return "".join(traceback.format_exception_only(type(e), e))
    return "".join(traceback.format_exception(type(e), e, tb))


def _check_parameters(flow_cls: type, ctx: TaskContext) -> None:
    """A Parameter without a stored value would leave the class attribute (the
    Parameter object) in its place: user code must never see that."""
    from .graph import parameters_of

    missing = sorted(set(parameters_of(flow_cls)) - ctx.param_names)
    if missing:
        raise ParameterError(
            f"run {ctx.payload.get('run_id')} has no stored value for parameter(s) "
            f"{', '.join(missing)}; start a new run (its origin may predate them)"
        )


def _open_store(root: str) -> Any:
    from .stores import open_store

    return open_store(root)


def run_task(flow_cls: type, spec: dict[str, Any], payload: dict[str, Any], result_fd: int,
             store: Any = None, params_checked: bool = False) -> int:
    """Runs one task; returns the process exit code. `store`: the worker's
    ArtifactStore, shared by its children. `params_checked`: the run's
    parameter records were checked against the flow's Parameters before it
    started (runtime.execute), so this task need not do it again."""
    # A segfault or abort then leaves the Python stack in the task's stderr.
    if not faulthandler.is_enabled():
        faulthandler.enable(file=sys.stderr, all_threads=False)
    step_name = payload["step"]
    spec_step = next(s for s in spec["steps"] if s["name"] == step_name)
    flow_info = payload.get("flow", {})
    store = store or _open_store(flow_info["root"])
    ctx = TaskContext(payload, spec_step, store, flow_cls.__name__)
    result: dict[str, Any] = {}
    code = 0
    try:
        plan = plan_of(flow_cls, step_name, flow_info.get("with_decorators", []))
        decorators = plan.decorators
        for d in plan.env_decorators:
            os.environ.update(d.task_env())
        metadata_provider.use_datastore(flow_info["root"])  # Task(current.pathspec) reads this run
        flow = flow_cls.__new__(flow_cls)
        object.__setattr__(flow, "_cairn_task", ctx)
        if not params_checked:
            _check_parameters(flow_cls, ctx)
        for name in ctx.param_names:
            flow.__dict__[name] = ctx.load_inherited(name)
        frame = ctx.innermost_foreach()
        current._set(
            flow_name=flow_cls.__name__, run_id=str(payload["run_id"]), step_name=step_name,
            task_id=str(payload["task_id"]), retry_count=payload.get("attempt", 0),
            origin_run_id=str(payload["origin_run_id"]) if payload.get("origin_run_id") else None,
            username=flow_info.get("user"), tags=flow_info.get("tags", []),
            index=frame.index if frame else None, project=flow_info.get("project"),
            parallel=_parallel_info(payload) if plan.parallel else None,
            parameter_names=[r[0] for r in payload["params"]],
        )
        cards = _start_cards(plan, spec, payload)
        if payload.get("fallback"):
            _catch(flow, ctx, decorators, _fallback_failure(payload))
            result["caught"] = payload.get("failure", "")
        else:
            try:
                if not _call_step(flow, ctx, plan) and ctx.next_call is None:
                    _static_next(ctx, "a decorator skipped or replaced it")
            except (Exception, SystemExit) as e:
                if not _catches_now(spec_step, payload):
                    raise
                trace = _user_traceback(e)
                sys.stderr.write(trace)
                failure = StepFailure(type(e).__name__, _message(e), trace)
                _catch(flow, ctx, decorators, failure)
                result["caught"] = str(failure)
            else:
                _no_failure(flow, decorators)
        _outcome(flow, ctx, result)
        records = _persist(flow, ctx)
        result["artifacts"] = cards.finish(flow, ctx, records, result) if cards else drop_card_records(records)
    except SystemExit as e:
        # sys.exit(n) in a step: the task fails with that exit status.
        code = e.code if isinstance(e.code, int) and 0 < e.code < 256 else 1
        trace = _user_traceback(e)
        sys.stderr.write(trace)
        result = {"exception": {"type": "SystemExit", "message": f"the step called sys.exit({e.code!r})",
                                "traceback": trace}}
    except BaseException as e:  # noqa: BLE001 - everything the step raises is reported
        trace = _user_traceback(e)
        sys.stderr.write(trace)
        result = {"exception": {"type": type(e).__name__, "message": _message(e), "traceback": trace}}
        title = _headline(e)
        if title:
            result["exception"]["headline"] = title
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed or broken stream: nothing to flush
                stream.flush()
    entries = metadata_provider.task_entries()  # profile(...) and other additions to the task's metadata
    if entries:
        result["metadata"] = entries
    _write_all(result_fd, encode_result(result, ctx.new_blobs if code == 0 else {}))
    return code


def _parallel_info(payload: dict[str, Any]) -> dict[str, Any] | None:
    from .parallel import parallel_info

    return parallel_info(payload["stack"], payload["task_id"])


def _start_cards(plan: Any, spec: dict[str, Any], payload: dict[str, Any]) -> Any:
    """The task's card session (`current.card`), or None when the step has no @card."""
    from_cards = sys.modules.get("cairn.cards.runtime")
    if not plan.cards:
        if from_cards is not None:
            from_cards.end_task()  # a session left by an earlier task of this process
        return None
    from .cards.runtime import start_task

    info = {**current._info, "attempt": payload.get("attempt", 0),
            "root": payload.get("flow", {}).get("root"), "spec": spec}
    return start_task(plan.decorators, info)


def _call_step(flow: Any, ctx: TaskContext, plan: Any) -> bool:
    """Runs the step's body; False if a user decorator skipped or replaced it.
    Without user decorators or @timeout, a plain call."""
    inputs = ctx.inputs() if ctx.is_join else None
    options = ctx.spec.get("options", {})
    if plan.wrappers or options.get("step_timeout_s"):
        from .step_call import call_step

        return call_step(flow, ctx.step, inputs, plan.wrappers, options)
    method = getattr(flow, ctx.step)
    if inputs is not None:
        method(inputs)
    else:
        method()
    return True


def _message(e: BaseException) -> str:
    return str(e)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
