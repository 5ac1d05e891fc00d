"""Parameter, IncludeFile and JSONType: a flow's inputs, set on the command
line (`--alpha 0.5`) or from CAIRN_RUN_<NAME>, versioned with the run."""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from .errors import CairnException, ParameterError


class JSONTypeClass:
    name = "JSON"

    def __call__(self, text: Any) -> Any:
        if not isinstance(text, str):
            return text
        try:
            return json.loads(text)
        except ValueError as e:
            raise ParameterError(f"not valid JSON: {e}") from e
        except RecursionError:
            raise ParameterError("JSON nested too deeply (Python's recursion limit)") from None

    def __repr__(self) -> str:
        return "JSONType"


JSONType = JSONTypeClass()

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


class DeployTimeContext:
    """What a callable default receives (Metaflow passes a context object)."""

    def __init__(self, flow_name: str, parameter_name: str, user_name: str):
        self.flow_name = flow_name
        self.parameter_name = parameter_name
        self.user_name = user_name


class Parameter:
    """A run-time input of a flow, readable as `self.<name>` in every step.
    Besides Metaflow's arguments it takes `separator` (the value is split on
    it into a list, each item of `type`) and `is_flag` (a boolean switch);
    any other keyword is an error, as in Metaflow."""

    IS_INCLUDE_FILE = False
    EXTRA_KWARGS = frozenset({"separator", "is_flag"})

    def __init__(
        self,
        name: str,
        default: Any = None,
        type: Any = None,
        help: str | None = None,
        required: bool = False,
        show_default: bool = True,
        **kwargs: Any,
    ):
        unknown = set(kwargs) - self.EXTRA_KWARGS
        # Reported by the command line (check_reserved), not at import, where
        # it would be a traceback.
        self.problem = None if not unknown else (
            f"Parameter('{name}') got unknown keyword argument(s) {', '.join(sorted(unknown))}; "
            f"it takes default, type, help, required, show_default, separator and is_flag"
        )
        self.name = name
        self.default = default
        self.help = help or ""
        self.required = required
        self.show_default = show_default
        self._type = type
        self.separator: str | None = kwargs.get("separator")
        if self.separator is not None and (not isinstance(self.separator, str) or not self.separator):
            raise ParameterError(f"Parameter('{name}'): separator must be a non-empty string")
        if kwargs.get("is_flag") and type is None:
            self._type = bool
        self.kwargs = kwargs

    @property
    def type(self) -> Any:
        if self._type is not None:
            return self._type
        from .config import DelayEvaluator, resolve_value

        default = self.default
        if isinstance(default, DelayEvaluator):
            try:
                default = resolve_value(default)
            except CairnException:
                return str  # configs not read yet (the command line is being built)
        return _infer_type(default)

    @type.setter
    def type(self, value: Any) -> None:
        self._type = value

    @property
    def type_name(self) -> str:
        t = self.type
        return getattr(t, "name", None) or getattr(t, "__name__", None) or str(t)

    def convert(self, value: Any) -> Any:
        if value is None:
            return None
        if self.separator is not None:
            items = value.split(self.separator) if isinstance(value, str) else list(value)
            return [self._convert_one(v) for v in items]
        return self._convert_one(value)

    def _convert_one(self, value: Any) -> Any:
        try:
            if self.type is bool:
                return _to_bool(value)
            if self.type in (int, float, str):
                if self.type is int and isinstance(value, float):
                    raise ValueError("expected an integer")
                return self.type(value)
            if callable(self.type):
                return self.type(value)
        except (ValueError, TypeError, ParameterError) as e:
            raise ParameterError(
                f"parameter '{self.name}' expects {self.type_name}, got {value!r}: {e}"
            ) from e
        return value

    def resolve(self, cli_value: Any, flow_name: str, user: str) -> Any:
        """CLI value, else CAIRN_RUN_<NAME> (or METAFLOW_RUN_<NAME>), else default."""
        value = cli_value
        if value is None:
            env_name = self.name.upper().replace("-", "_")
            value = os.environ.get(f"CAIRN_RUN_{env_name}", os.environ.get(f"METAFLOW_RUN_{env_name}"))
        if value is None:
            from .config import resolve_value

            default = resolve_value(self.default)
            if callable(default) and not isinstance(default, type):
                default = default(DeployTimeContext(flow_name, self.name, user))
            if default is None and self.required:
                raise ParameterError(
                    f"missing required parameter '{self.name}': pass --{self.name} VALUE"
                )
            if default is None:
                return None
            value = default
        return self.convert(value)

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, default={self.default!r})"


class IncludeFile(Parameter):
    """A file whose content is read when the run starts and versioned as an artifact."""

    IS_INCLUDE_FILE = True

    def __init__(self, name: str, default: str | None = None, is_text: bool = True,
                 encoding: str = "utf-8", help: str | None = None, required: bool = False,
                 **kwargs: Any):
        super().__init__(name, default=default, type=str, help=help, required=required, **kwargs)
        self.is_text = is_text
        self.encoding = encoding

    def convert(self, value: Any) -> Any:
        if value is None:
            return None
        path = os.path.expanduser(str(value))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ParameterError(f"IncludeFile '{self.name}': cannot read {path}: {e.strerror}") from e
        return data.decode(self.encoding) if self.is_text else data


def check_reserved(param: Parameter, run_parser: Any) -> None:
    """A parameter may not take the name of a run option (--tag, --max-workers,
    ...); reports a Parameter's bad arguments too."""
    if param.problem:
        raise ParameterError(param.problem)
    option = f"--{param.name}"
    if option in run_parser._option_string_actions or param.name in ("help", "h"):
        raise ParameterError(
            f"Parameter name '{param.name}' is a reserved word. Please use a different "
            f"name for your parameter."
        )


def _infer_type(default: Any) -> Callable:
    if callable(default) and not isinstance(default, type):
        return str
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, (dict, list)):
        return JSONType
    return str
