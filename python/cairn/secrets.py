"""@secrets(sources=[...]): secret values placed in the task's environment
(never stored as artifacts, never printed or logged), from a local provider:

- `local-file` (the default when CAIRN_SECRETS_FILE is set): that JSON file
  maps each source id to an object of environment variables;
- `env` (the default otherwise): source id X is read from the environment
  variable CAIRN_SECRET_X (X upper-cased, other characters as `_`), a JSON
  object of environment variables.

A source is an id string or `{"type": ..., "id": ..., "options": {...}}`."""

from __future__ import annotations

import json
import os
import re
from typing import Any, ClassVar

from .decorators import StepDecorator
from .errors import CairnException

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretsError(CairnException):
    headline = "Secrets unavailable"


class secrets(StepDecorator):  # noqa: N801 - Metaflow's name
    name = "secrets"
    defaults: ClassVar[dict[str, Any]] = {"sources": [], "role": None, "allow_override": False}

    def graph_options(self) -> dict[str, Any]:
        for source in self.attributes["sources"] or []:
            _source_parts(source)  # a malformed source fails `check`, not the task
        return {}

    def task_env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in self.attributes["sources"] or []:
            kind, ident = _source_parts(source)
            values = _read_source(kind, ident)
            for key, value in values.items():
                if not isinstance(key, str) or not _ENV_NAME.match(key):
                    raise SecretsError(f"secret source '{ident}' has a key that is not an environment "
                                       f"variable name: {key!r}")
                if key in env:
                    raise SecretsError(f"secret source '{ident}' sets {key}, which an earlier source set too")
                if key in os.environ and not self.attributes["allow_override"]:
                    raise SecretsError(f"secret source '{ident}' sets {key}, which is already in the "
                                       f"environment; pass allow_override=True to replace it")
                env[key] = value if isinstance(value, str) else json.dumps(value)
        return env

    def __repr__(self) -> str:
        return f"@secrets(sources={self.attributes['sources']!r})"


def _source_parts(source: Any) -> tuple[str, str]:
    if isinstance(source, str):
        default = "local-file" if os.environ.get("CAIRN_SECRETS_FILE") else "env"
        return default, source
    if isinstance(source, dict) and isinstance(source.get("id"), str):
        kind = source.get("type") or ("local-file" if os.environ.get("CAIRN_SECRETS_FILE") else "env")
        if kind not in ("local-file", "env"):
            raise SecretsError(f"secret source type '{kind}' is not available in cairn; use 'env' "
                               f"(CAIRN_SECRET_<ID>) or 'local-file' (CAIRN_SECRETS_FILE)")
        return kind, source["id"]
    raise SecretsError(f"@secrets sources are ids or {{'type': ..., 'id': ...}}, not {type(source).__name__}")


def _read_source(kind: str, ident: str) -> dict[str, Any]:
    if kind == "local-file":
        path = os.environ.get("CAIRN_SECRETS_FILE")
        if not path:
            raise SecretsError(f"secret source '{ident}' is of type local-file but CAIRN_SECRETS_FILE is not set")
        try:
            with open(path, encoding="utf-8") as f:
                store = json.load(f)
        except OSError as e:
            raise SecretsError(f"cannot read CAIRN_SECRETS_FILE {path}: {e.strerror}") from None
        except ValueError:
            raise SecretsError(f"CAIRN_SECRETS_FILE {path} is not valid JSON") from None  # no content shown
        if not isinstance(store, dict) or ident not in store:
            raise SecretsError(f"CAIRN_SECRETS_FILE {path} has no secret source '{ident}'")
        values = store[ident]
    else:
        var = "CAIRN_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", ident).upper()
        text = os.environ.get(var)
        if text is None:
            raise SecretsError(f"secret source '{ident}': environment variable {var} is not set")
        try:
            values = json.loads(text)
        except ValueError:
            raise SecretsError(f"secret source '{ident}': {var} is not a JSON object") from None
    if not isinstance(values, dict):
        raise SecretsError(f"secret source '{ident}' is not an object of environment variables")
    return values


__all__ = ["secrets"]
