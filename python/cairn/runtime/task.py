"""The body of a task process: load inputs, call the user's step, save its
artifacts, and report the result to the engine on the result channel.
What the task reads and writes (payload, artifacts, inputs) is task_data.py.

Runs in a child forked by the worker (the fast path) or in a fresh
interpreter started by `python flow.py step` (the standalone path)."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import sys
import traceback
from typing import Any

from .. import metadata_provider
from ..current import current
from ..errors import CairnError, CairnException, ParameterError
from .step_plan import drop_card_records, plan_of
from .task_data import Record, TaskContext, encode_result

_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), frozenset, range)

# Frames of cairn itself, left out of the tracebacks users see.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

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
    from ..graph import parameters_of

    missing = sorted(set(parameters_of(flow_cls)) - ctx.param_names)
    if missing:
        raise ParameterError(
            f"run {ctx.payload.get('run_id')} has no stored value for parameter(s) "
            f"{', '.join(missing)}; start a new run (its origin may predate them)"
        )


def _open_store(root: str) -> Any:
    from ..stores import open_store

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
    from ..parallel import parallel_info

    return parallel_info(payload["stack"], payload["task_id"])


def _start_cards(plan: Any, spec: dict[str, Any], payload: dict[str, Any]) -> Any:
    """The task's card session (`current.card`), or None when the step has no @card."""
    from_cards = sys.modules.get("cairn.cards.runtime")
    if not plan.cards:
        if from_cards is not None:
            from_cards.end_task()  # a session left by an earlier task of this process
        return None
    from ..cards.runtime import start_task

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
