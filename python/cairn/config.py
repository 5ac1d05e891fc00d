"""Configs (Metaflow 2.13+): `Config(name, default=..., default_value=...,
parser=...)`, read once before the graph is built from `--config NAME FILE`,
`--config-value NAME VALUE`, the default file or the default value, and
usable in decorator arguments (`@retry(times=cfg.retries)`,
`config_expr("cfg.retries")`) and Parameter defaults. The values are stored
with the run (in its GraphSpec) and a resume uses the origin run's."""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any, Callable

from .errors import CairnException


class ConfigError(CairnException):
    headline = "Bad config"


class ConfigValue(Mapping):
    """A config's value: a read-only mapping whose keys are also attributes
    (`cfg.db.host` or `cfg["db"]["host"]`); nested dicts are ConfigValues."""

    def __init__(self, data: Mapping[str, Any]):
        object.__setattr__(self, "_data", {k: _wrap(v) for k, v in dict(data).items()})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_data"][name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("a config value is read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConfigValue, (self.to_dict(),))

    def to_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() if isinstance(v, ConfigValue) else _unwrap(v) for k, v in self._data.items()}

    def __repr__(self) -> str:
        return repr(self.to_dict())


def _wrap(value: Any) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, ConfigValue):
        return ConfigValue(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, ConfigValue):
        return value.to_dict()
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


class DelayEvaluator:
    """A reference to (part of) a config, written where the config is not
    known yet (a decorator argument, a Parameter default): `cfg.a.b` or
    `config_expr("cfg.a * 2")`. Resolved once the configs are read."""

    def __init__(self, expr: str, config: Config | None = None, path: tuple[Any, ...] = ()):
        object.__setattr__(self, "_expr", expr)
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str) -> DelayEvaluator:
        if name.startswith("__"):
            raise AttributeError(name)
        return DelayEvaluator(f"{self._expr}.{name}", self._config, (*self._path, name))

    def __getitem__(self, key: Any) -> DelayEvaluator:
        return DelayEvaluator(f"{self._expr}[{key!r}]", self._config, (*self._path, key))

    def resolve(self) -> Any:
        if self._config is not None:
            value = resolved_value(self._config)
            for part in self._path:
                try:
                    value = value[part]
                except (KeyError, TypeError, IndexError):
                    raise ConfigError(f"config '{self._config.name}' has no {self._expr!s}") from None
            return _unwrap(value) if isinstance(value, (ConfigValue, list)) else value
        return _evaluate(self._expr)

    def __repr__(self) -> str:
        return f"config_expr({self._expr!r})"


def config_expr(expr: str) -> DelayEvaluator:
    """An expression over the flow's configs (by attribute name), evaluated
    once they are read: `@retry(times=config_expr("cfg.retries"))`."""
    return DelayEvaluator(expr)


_NOT_READ = object()


class Config:
    """A flow configuration, set before the run starts and fixed for it.
    `default` is a file path (or a function returning one), `default_value`
    a dict or a string for the parser; `parser` turns the text into a dict
    (default: JSON; a string such as "tomllib.loads" names a function)."""

    def __init__(self, name: str, default: str | Callable[..., str] | None = None,
                 default_value: str | dict[str, Any] | Callable[..., Any] | None = None,
                 help: str | None = None, required: bool | None = None,
                 parser: str | Callable[[str], Any] | None = None, **kwargs: Any):
        if kwargs:
            raise ConfigError(f"Config('{name}') got unknown argument(s) {sorted(kwargs)}")
        self.name = name
        self.default = default
        self.default_value = default_value
        self.help = help or ""
        self.required = bool(required)
        self.parser = parser
        self._value: Any = _NOT_READ

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return self if obj is None else resolved_value(self)

    def __getattr__(self, name: str) -> DelayEvaluator:
        if name.startswith("_"):
            raise AttributeError(name)
        return DelayEvaluator(f"{self.name}.{name}", self, (name,))

    def __getitem__(self, key: Any) -> DelayEvaluator:
        return DelayEvaluator(f"{self.name}[{key!r}]", self, (key,))

    def __repr__(self) -> str:
        return f"Config({self.name!r})"

    def parse(self, text: str, where: str) -> ConfigValue:
        parser = self.parser or json.loads
        if isinstance(parser, str):
            module, _, attr = parser.rpartition(".")
            try:
                parser = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError, ValueError) as e:
                raise ConfigError(f"config '{self.name}': parser {self.parser!r} cannot be imported: {e}") from None
        try:
            value = parser(text)
        except Exception as e:  # noqa: BLE001 - any parser failure is the user's input
            raise ConfigError(f"config '{self.name}': {where} could not be parsed: {e}") from None
        return self.check(value, where)

    def check(self, value: Any, where: str) -> ConfigValue:
        if isinstance(value, ConfigValue):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"config '{self.name}': {where} gave {type(value).__name__}, not a dict")
        return ConfigValue(value)


def configs_of(flow_cls: type) -> dict[str, Config]:
    from .graph import attributes_of

    return attributes_of(flow_cls, Config)


def resolved_value(cfg: Config) -> Any:
    if cfg._value is _NOT_READ:
        raise ConfigError(f"config '{cfg.name}' is used before configs were read")
    return cfg._value


def resolve_value(value: Any) -> Any:
    """`value` with config references replaced by what they stand for."""
    if isinstance(value, DelayEvaluator):
        return value.resolve()
    if isinstance(value, Config):
        return _unwrap(resolved_value(value))
    if isinstance(value, dict) and any(isinstance(v, (DelayEvaluator, Config)) for v in value.values()):
        return {k: resolve_value(v) for k, v in value.items()}
    if isinstance(value, list) and any(isinstance(v, (DelayEvaluator, Config)) for v in value):
        return [resolve_value(v) for v in value]
    return value


_ACTIVE: dict[str, Any] = {}


def _evaluate(expr: str) -> Any:
    flow_cls = _ACTIVE.get("flow")
    if flow_cls is None:
        raise ConfigError(f"config_expr({expr!r}) is used before configs were read")
    import sys

    namespace = dict(vars(sys.modules.get(flow_cls.__module__, object())) or {})
    namespace.update({attr: resolved_value(c) for attr, c in configs_of(flow_cls).items()})
    try:
        return _unwrap(eval(expr, namespace))  # noqa: S307 - the flow author's own expression
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"config_expr({expr!r}) failed: {type(e).__name__}: {e}") from None


def read_configs(flow_cls: type, files: list[list[str]] | None = None,
                 values: list[list[str]] | None = None, stored: dict[str, Any] | None = None,
                 user: str = "") -> None:
    """Reads every Config of the flow: from `stored` (a resume, a task) or
    from --config NAME FILE / --config-value NAME VALUE, the default file,
    the default value. Sets each Config's value for this process."""
    from .parameters import DeployTimeContext

    _ACTIVE["flow"] = flow_cls
    configs = configs_of(flow_cls)
    by_name = {c.name: c for c in configs.values()}
    given: dict[str, tuple[str, str]] = {}
    for kind, pairs in (("file", files or []), ("value", values or [])):
        for name, text in pairs:
            if name not in by_name:
                known = ", ".join(sorted(by_name)) or "none"
                raise ConfigError(f"--config{'-value' if kind == 'value' else ''} {name}: flow "
                                  f"{flow_cls.__name__} has no config named '{name}' (its configs: {known})")
            if name in given:
                raise ConfigError(f"config '{name}' is given twice; pass one --config or --config-value")
            given[name] = (kind, text)
    for cfg in configs.values():
        if stored is not None:
            cfg._value = None if stored.get(cfg.name) is None else ConfigValue(stored[cfg.name])
            continue
        ctx = DeployTimeContext(flow_cls.__name__, cfg.name, user)
        cfg._value = _read_one(cfg, given.get(cfg.name), ctx)


def _read_one(cfg: Config, given: tuple[str, str] | None, ctx: Any) -> Any:
    if given is not None:
        kind, text = given
        if kind == "value":
            return cfg.parse(text, "--config-value")
        return cfg.parse(_read_file(cfg, text), f"file {text}")
    default = cfg.default(ctx) if callable(cfg.default) else cfg.default
    if default and os.path.exists(os.path.expanduser(default)):
        return cfg.parse(_read_file(cfg, default), f"file {default}")
    value = cfg.default_value(ctx) if callable(cfg.default_value) else cfg.default_value
    if value is not None:
        return cfg.parse(value, "default_value") if isinstance(value, str) else cfg.check(value, "default_value")
    if default:
        raise ConfigError(f"config '{cfg.name}': default file {default} does not exist; "
                          f"pass --config {cfg.name} FILE")
    if cfg.required:
        raise ConfigError(f"config '{cfg.name}' is required: pass --config {cfg.name} FILE "
                          f"or --config-value {cfg.name} VALUE")
    return None


def _read_file(cfg: Config, path: str) -> str:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"config '{cfg.name}': cannot read {path}: {e.strerror}") from None


def config_values(flow_cls: type) -> dict[str, Any]:
    """{attribute name: ConfigValue (or None)} of the flow's read configs."""
    return {attr: cfg._value for attr, cfg in configs_of(flow_cls).items() if cfg._value is not _NOT_READ}


def config_dicts(flow_cls: type) -> dict[str, Any]:
    """{config name: plain value} of the flow's read configs, for the GraphSpec."""
    out = {}
    for cfg in configs_of(flow_cls).values():
        if cfg._value is not _NOT_READ:
            out[cfg.name] = cfg._value.to_dict() if isinstance(cfg._value, ConfigValue) else cfg._value
    return out


__all__ = ["Config", "ConfigValue", "config_expr"]
