"""@ray, @kubernetes and @batch: run a step on a Ray cluster. @kubernetes and
@batch keep Metaflow's arguments and their cpu/memory/gpu meaning; cairn runs
them on Ray when the run has `--with ray` and refuses to run them otherwise
(never silently locally)."""

from __future__ import annotations

from typing import Any, ClassVar

from ..decorators import StepDecorator
from ..errors import CairnException


class ray(StepDecorator):  # noqa: N801 - the decorator's name
    """Runs the step on the Ray cluster: `@ray`, or `@ray(cpu=2, memory=8192,
    gpu=1, resources={"pool": 1}, label_selector={"zone": "a"})`; memory in MB
    as for @resources. `--with ray` adds it to every step."""

    name = "ray"
    defaults: ClassVar[dict[str, Any]] = {
        "cpu": None, "memory": None, "gpu": None, "resources": {}, "label_selector": {},
    }

    def __init__(self, **attributes: Any):
        super().__init__(**attributes)
        a = self.attributes
        for key in ("cpu", "memory", "gpu"):
            if a[key] is not None:
                a[key] = _number(f"@ray({key}=...)", a[key])
        if not isinstance(a["resources"] or {}, dict) or not isinstance(a["label_selector"] or {}, dict):
            raise CairnException("@ray: resources and label_selector must be dicts")

    def graph_options(self) -> dict[str, Any]:
        a = self.attributes
        request = {k: a[k] for k in ("cpu", "memory", "gpu") if a[k] is not None}
        request["resources"] = {str(k): float(v) for k, v in (a["resources"] or {}).items()}
        request["label_selector"] = {str(k): str(v) for k, v in (a["label_selector"] or {}).items()}
        return {"backend": "ray", "ray": request}


class _ContainerDecorator(StepDecorator):
    """A cloud container decorator: its cpu/memory/gpu become a Ray request."""

    def graph_options(self) -> dict[str, Any]:
        a = self.attributes
        request = {k: _number(f"@{self.name}({k}=...)", a[k]) for k in ("cpu", "memory", "gpu")
                   if a.get(k) is not None}
        return {"remote_decorator": self.name, self.name: request}


class kubernetes(_ContainerDecorator):  # noqa: N801
    name = "kubernetes"
    defaults: ClassVar[dict[str, Any]] = {
        "cpu": 1, "memory": 4096, "disk": 10240, "gpu": None, "gpu_vendor": None, "image": None,
        "image_pull_policy": None, "image_pull_secrets": None, "service_account": None,
        "secrets": None, "node_selector": None, "namespace": None, "tolerations": None,
        "labels": None, "annotations": None, "use_tmpfs": False, "tmpfs_tempdir": True,
        "tmpfs_size": None, "tmpfs_path": None, "persistent_volume_claims": None,
        "shared_memory": None, "port": None, "compute_pool": None, "hostname_resolution_timeout": None,
        "qos": None, "security_context": None,
    }


class batch(_ContainerDecorator):  # noqa: N801
    name = "batch"
    defaults: ClassVar[dict[str, Any]] = {
        "cpu": 1, "memory": 4096, "gpu": None, "image": None, "queue": None, "iam_role": None,
        "execution_role": None, "shared_memory": None, "max_swap": None, "swappiness": None,
        "use_tmpfs": False, "tmpfs_tempdir": True, "tmpfs_size": None, "tmpfs_path": None,
        "inferentia": None, "trainium": None, "efa": None, "host_volumes": None,
        "efs_volumes": None, "ephemeral_storage": None, "log_driver": None, "log_options": None,
        "aws_batch_tags": None, "privileged": None,
    }


def _number(what: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CairnException(f"{what}: expected a number, got {value!r}") from None
    if number < 0:
        raise CairnException(f"{what}: must be 0 or more, got {value!r}")
    return number
