"""cairn's exceptions. Every error cairn raises derives from CairnError."""

from __future__ import annotations

from . import _core

CairnError = _core.Error
GraphError = _core.GraphError
NotFoundError = _core.NotFoundError
DatastoreError = _core.DatastoreError
DatastoreVersionError = _core.DatastoreVersionError


class CairnException(CairnError):
    """Raised for user-facing problems found in Python (bad arguments, bad flows)."""

    headline = "cairn error"


class MergeArtifactsError(CairnException):
    """merge_artifacts found branches that disagree on an artifact."""

    headline = "Cannot merge artifacts"

    def __init__(self, message: str, names: list[str]):
        super().__init__(message)
        self.artifact_names = names


class ParameterError(CairnException):
    headline = "Bad parameter"


class ArtifactError(CairnException):
    headline = "Bad artifact"


class NamespaceMismatchError(CairnException):
    headline = "Object not in the current namespace"


class TaggingError(CairnException):
    """A tag operation Metaflow refuses too (e.g. one that changes nothing)."""

    headline = "Tagging error"


class UnknownStepError(CairnException):
    headline = "Unknown step"


class InvalidPathspecError(CairnException):
    """A client object named by a pathspec of the wrong shape."""

    headline = "Malformed pathspec"


def headline(exc: BaseException) -> str:
    """The one-line title the CLI prints before an error's message."""
    if isinstance(exc, GraphError):
        return "Validity checker found an issue"
    if isinstance(exc, NotFoundError):
        return "Not found"
    if isinstance(exc, DatastoreError):
        return "Datastore error"
    return getattr(exc, "headline", type(exc).__name__)
