"""cairn: ML workflows as Python classes, run by a C++ engine.

    from cairn import FlowSpec, step

Metaflow's user API: FlowSpec, @step, Parameter, the step decorators,
`current`, and the client (Flow, Run, Step, Task, namespaces)."""

from .errors import (
    CairnError,
    CairnException,
    DatastoreError,
    GraphError,
    MergeArtifactsError,
    NamespaceMismatchError,
    NotFoundError,
)
from .version import __version__

# Names that are also submodules of the package stay eager: once anything
# imports `cairn.parallel` (the module), Python binds that name on the
# package, which a lazy `from cairn import parallel` would then find first.
from .current import current
from .parallel import parallel
from .project import project
from .secrets import secrets

__all__ = [
    "CairnError", "CairnException", "DataArtifact", "DatastoreError", "Flow", "FlowSpec",
    "GraphError", "IncludeFile", "JSONType", "MergeArtifactsError", "Metaflow", "MetaflowData",
    "NamespaceMismatchError", "NotFoundError", "Parameter", "Run", "Runner", "Step", "StepDecorator",
    "Task", "__version__", "card", "catch", "current", "default_namespace", "environment", "get_namespace",
    "namespace", "resources", "retry", "step", "timeout",
    "batch", "kubernetes", "ray",
]
# The rest of Metaflow's client, runner and utility names (issue 14).
__all__ += [
    "DeployedFlow", "Deployer", "ExecutingRun", "JSONTypeClass", "NBDeployer", "NBRunner", "default_metadata",
    "get_metadata", "inspect_spin", "metadata", "parallel_imap_unordered", "parallel_map", "profile",
    "USER_SKIP_STEP", "conda_environment_yml_parser", "pyproject_toml_parser", "requirements_txt_parser",
    "yaml_parser",
]
# What a user step decorator yields to skip the step (any dict does, as in Metaflow).
USER_SKIP_STEP: dict = {}

# The flow-definition half of Metaflow's API: configs, flow decorators,
# user-defined decorators, secrets, and the names cairn does not provide yet.
from .excepthook import install as _install_excepthook  # noqa: E402

_install_excepthook()

__all__ += [
    "Config", "ConfigValue", "FlowMutator", "StepMutator", "UserStepDecorator", "conda", "conda_base",
    "config_expr", "exit_hook", "parallel", "project", "pypi", "pypi_base", "pytorch_parallel",
    "schedule", "secrets", "trigger",
    "trigger_on_finish", "user_step_decorator",
]
# Metaflow's S3 client (boto3 is imported on its first request) and its main errors.
__all__ += ["MetaflowS3Exception", "MetaflowS3NotFound", "S3"]

# Names loaded on first use, by module: what a flow file does not import
# stays out of the run's worker, whose every page each forked task shares
# (docs/performance.md: a bigger worker costs every task), and a notebook
# that only reads runs (`from cairn import Flow`) imports the client alone,
# not the flow machinery (ast, inspect). The S3 client also imports
# threading, whose at-fork hook costs each forked task ~80 page faults.
_LAZY = {
    "backends.decorators": ("batch", "kubernetes", "ray"),
    "config": ("Config", "ConfigValue", "config_expr"),
    "decorators": ("StepDecorator", "card", "catch", "environment", "resources", "retry", "step", "timeout"),
    "flow_decorators": ("exit_hook", "schedule", "trigger", "trigger_on_finish"),
    "flowspec": ("FlowSpec",),
    "parameters": ("IncludeFile", "JSONType", "JSONTypeClass", "Parameter"),
    "unsupported": ("conda", "conda_base", "pypi", "pypi_base", "pytorch_parallel"),
    "client": ("DataArtifact", "Flow", "Metaflow", "MetaflowData", "Run", "Step", "Task",
               "default_namespace", "get_namespace", "namespace"),
    "metadata_provider": ("default_metadata", "get_metadata", "inspect_spin", "metadata", "profile"),
    "runtime.multicore": ("parallel_imap_unordered", "parallel_map"),
    "nbrun": ("NBRunner",),
    "parsers": ("conda_environment_yml_parser", "pyproject_toml_parser", "requirements_txt_parser",
                "yaml_parser"),
    "runner": ("ExecutingRun", "Runner"),
    "stores.s3_client": ("MetaflowS3Exception", "MetaflowS3NotFound", "S3"),
    "unavailable": ("DeployedFlow", "Deployer", "NBDeployer"),
    "user_decorators": ("FlowMutator", "StepMutator", "UserStepDecorator", "user_step_decorator"),
}
_LAZY_MODULE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> object:
    module = _LAZY_MODULE.get(name)
    if module is None:
        raise AttributeError(f"module 'cairn' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_MODULE))
