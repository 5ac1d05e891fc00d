"""Config parsers Metaflow exports by name: `Config("cfg", default="cfg.yaml",
parser=yaml_parser)`."""

from __future__ import annotations

from typing import Any

from .errors import CairnException


def yaml_parser(text: str) -> Any:
    """The config text read as YAML (needs PyYAML, imported only when used)."""
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise CairnException("yaml_parser needs PyYAML: pip install pyyaml") from None
    return yaml.safe_load(text)
