"""cairn: ML workflows as Python classes, run by a C++ engine.

    from cairn import FlowSpec, step

Metaflow's user API: FlowSpec, @step, Parameter, the step decorators,
`current`, and the client (Flow, Run, Step, Task, namespaces)."""

from .client import (
    DataArtifact,
    Flow,
    Metaflow,
    MetaflowData,
    Run,
    Step,
    Task,
    default_namespace,
    get_namespace,
    namespace,
)
from .current import current
from .decorators import StepDecorator, card, catch, environment, resources, retry, step, timeout
from .errors import (
    CairnError,
    CairnException,
    DatastoreError,
    GraphError,
    MergeArtifactsError,
    NamespaceMismatchError,
    NotFoundError,
)
from .flowspec import FlowSpec
from .parameters import IncludeFile, JSONType, Parameter
from .runner import Runner
from .version import __version__

__all__ = [
    "CairnError", "CairnException", "DataArtifact", "DatastoreError", "Flow", "FlowSpec",
    "GraphError", "IncludeFile", "JSONType", "MergeArtifactsError", "Metaflow", "MetaflowData",
    "NamespaceMismatchError", "NotFoundError", "Parameter", "Run", "Runner", "Step", "StepDecorator",
    "Task", "__version__", "card", "catch", "current", "default_namespace", "environment", "get_namespace",
    "namespace", "resources", "retry", "step", "timeout",
]
