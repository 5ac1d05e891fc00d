"""Metaflow's `metaflow.exception` names, for code that imports them from
there: `from cairn.exception import MetaflowException, MetaflowNotFound`.
Each is the cairn class raised in the same situation, so an `except` clause
written for Metaflow catches what cairn raises; a user exception that
subclasses MetaflowException and sets `headline` fails its step under that
headline, `headline: message`, as Metaflow prints it (the client's
`Task.exception.type` keeps the class name).

MetaflowException is the root of every cairn error, as in Metaflow; unlike
Metaflow's, it takes only a message (no `lineno`/`source_file` arguments).
Metaflow's exit-code constants (METAFLOW_EXIT_ALLOW_RETRY, ...) are absent:
cairn decides retries from @retry and @catch, not from a task's exit code."""

from __future__ import annotations

from .errors import (
    CairnError,
    CairnException,
    InvalidPathspecError,
    MergeArtifactsError,
    NamespaceMismatchError,
    NotFoundError,
    ParameterError,
    TaggingError,
)

MetaflowException = CairnError
MetaflowInternalError = CairnError
MetaflowExceptionWrapper = CairnException
MetaflowNotFound = NotFoundError
MetaflowDataMissing = NotFoundError  # a blob or datastore that is gone
MetaflowNamespaceMismatch = NamespaceMismatchError
MetaflowTaggingError = TaggingError
MetaflowInvalidPathspec = InvalidPathspecError
MetaflowUnknownUser = CairnException
MissingInMergeArtifactsException = MergeArtifactsError
UnhandledInMergeArtifactsException = MergeArtifactsError
ParameterFieldFailed = ParameterError
ParameterFieldTypeMismatch = ParameterError
InvalidDecoratorAttribute = CairnException
CommandException = CairnException
ExternalCommandFailed = CairnException

__all__ = [
    "CommandException", "ExternalCommandFailed", "InvalidDecoratorAttribute",
    "MetaflowDataMissing", "MetaflowException", "MetaflowExceptionWrapper", "MetaflowInternalError",
    "MetaflowInvalidPathspec", "MetaflowNamespaceMismatch", "MetaflowNotFound", "MetaflowTaggingError",
    "MetaflowUnknownUser", "MissingInMergeArtifactsException", "ParameterFieldFailed",
    "ParameterFieldTypeMismatch", "UnhandledInMergeArtifactsException",
]
