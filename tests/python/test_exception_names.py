"""`from metaflow.exception import X` becomes `from cairn.exception import X`:
every class name of Metaflow's module imports, and each catches what cairn
raises in the situation Metaflow raises it."""

from __future__ import annotations

import pytest
from cairn import Flow, Run, exception

# The classes of metaflow.exception (Metaflow 2.19).
METAFLOW_NAMES = [
    "CommandException", "ExternalCommandFailed", "InvalidDecoratorAttribute", "MetaflowDataMissing",
    "MetaflowException", "MetaflowExceptionWrapper", "MetaflowInternalError", "MetaflowInvalidPathspec",
    "MetaflowNamespaceMismatch", "MetaflowNotFound", "MetaflowTaggingError", "MetaflowUnknownUser",
    "MissingInMergeArtifactsException", "ParameterFieldFailed", "ParameterFieldTypeMismatch",
    "UnhandledInMergeArtifactsException",
]


@pytest.mark.parametrize("name", METAFLOW_NAMES)
def test_every_name_is_an_exception_under_metaflow_exception(name):
    cls = getattr(exception, name)
    assert issubclass(cls, exception.MetaflowException) and issubclass(cls, Exception)


def test_client_errors_are_caught_by_metaflows_names(runner):
    runner.write("hello.py", FLOW)
    runner.run("hello.py", "run", check=True)
    with pytest.raises(exception.MetaflowNotFound):
        Flow("NoSuchFlow")
    with pytest.raises(exception.MetaflowException):
        Flow("NoSuchFlow")
    with pytest.raises(exception.MetaflowInvalidPathspec) as e:
        Run("RaisingFlow/1/start")
    assert "got 'RaisingFlow/1/start'" in str(e.value)
    run = Flow("RaisingFlow").latest_run
    with pytest.raises(exception.MetaflowTaggingError):
        run.add_tags([])


def test_a_users_subclass_fails_its_step_under_its_headline(runner):
    """Metaflow prints a MetaflowException as `headline: message`; so does
    the run's failure line, the task's stderr and `logs`, while the client
    keeps the class name as the exception's type."""
    runner.write("hello.py", FLOW)
    proc = runner.run("hello.py", "run", env={"RAISE": "1"})
    assert proc.returncode == 1
    assert "step 'start' (task 1) failed: Quota exceeded: over budget by 3" in proc.stdout
    assert "Quota exceeded: over budget by 3" in proc.stderr + proc.stdout
    logs = runner.run("hello.py", "logs", "1/start", check=True)
    assert "Quota exceeded: over budget by 3" in logs.stdout + logs.stderr
    assert 'raise QuotaError("over budget by 3")' in logs.stdout + logs.stderr  # the user's frame
    exc = Run("RaisingFlow/1")["start"].task.exception
    assert (exc.type, exc.message) == ("QuotaError", "over budget by 3")


FLOW = """
import os
from cairn import FlowSpec, step
from cairn.exception import MetaflowException


class QuotaError(MetaflowException):
    headline = "Quota exceeded"


class RaisingFlow(FlowSpec):
    @step
    def start(self):
        if os.environ.get("RAISE"):
            raise QuotaError("over budget by 3")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RaisingFlow()
"""
