"""Type stubs for cairn._core, the C++ engine (private: use the cairn package)."""

from typing import Any

SCHEMA_VERSION: int

class Error(RuntimeError): ...
class GraphError(Error): ...
class NotFoundError(Error): ...
class DatastoreError(Error): ...
class DatastoreVersionError(DatastoreError): ...

def validate_graph(spec_json: str) -> dict[str, str]:
    """Validates a GraphSpec; raises GraphError listing every problem.
    Returns {split step: the join that closes it}."""

def run(options: dict[str, Any], worker_fd: int = -1, worker_pid: int = 0,
        console: dict[str, Any] = ..., sidecar_fd: int = -1, sidecar_pid: int = 0) -> dict[str, Any]:
    """Runs a flow to completion (GIL released); returns the run summary."""

def serve_worker(socket_fd: int, parent: int, prepare: Any
                 ) -> tuple[dict[str, str] | None, bytes, int] | None: ...
def die_with_parent(parent: int) -> None:
    """This process dies (SIGKILL) when `parent` does."""

class BlobSegment: ...

def digest(parts: list[Any]) -> str: ...
def plan_raw_blob(parts: list[Any]) -> tuple[str, tuple[bytes, list[int], int] | None]:
    """(digest, (header, segment offsets in the body, file size)) of the raw blob
    file these buffers make, or (digest, None) when the store would compress them."""
class ArtifactStore:
    def __init__(self, root: str) -> None: ...
    def put(self, parts: list[Any]) -> tuple[str, int, int]:
        """Stores buffers as one blob: (digest, size, stored_size)."""
    def get(self, digest: str) -> list[memoryview]:
        """Copy-on-write views of the blob's segments; raises on a digest mismatch."""
    def get_bytes(self, digest: str, as_bytearray: bool = False) -> bytes | bytearray:
        """A one-segment blob read into a new bytes (bytearray); raises on a digest mismatch."""
    def has(self, digest: str) -> bool: ...
    def path_of(self, digest: str) -> str: ...

class ArtifactRecord:
    name: str
    digest: str
    size: int
    type: str
    encoding: str
    def __init__(self, name: str, digest: str, size: int, type: str, encoding: str) -> None: ...

class AttemptRecord:
    attempt: int
    status: str  # running | succeeded | failed | timeout | killed | lost
    exit_code: int
    signal: int
    reason: str
    started_at: float
    finished_at: float

class TaskRecord:
    run_id: int
    step: str
    task_id: int
    status: str  # running (until the task finishes) | succeeded | failed
    foreach_index: int
    clone_key: str
    origin: str
    result_json: str
    parents: list[int]
    started_at: float
    finished_at: float
    attempts: list[AttemptRecord]
    artifacts: list[ArtifactRecord]

class RunRecord:
    run_id: int
    flow: str
    status: str
    user: str
    created_at: float
    finished_at: float
    origin_run_id: int
    engine_pid: int
    engine_started: int
    engine_machine: str
    params_json: str
    failure: str
    graph_json: str
    tags: list[str]
    system_tags: list[str]

class Datastore:
    def __init__(self, root: str, readonly: bool = True) -> None: ...
    @property
    def root(self) -> str: ...
    def flows(self) -> list[str]: ...
    def collect_garbage(self, blobs: bool = False, dry_run: bool = False,
                        grace_s: float = 3600.0) -> dict[str, Any]:
        """Sweeps stale temp files and, with blobs, unreferenced blobs (store/gc.h):
        {"temp", "blobs", "small_blobs", "kept", "scanned": (count, bytes), "horizon", "live_runs"}."""
    def measure_usage(self, grace_s: float = 3600.0) -> dict[str, Any]:
        """Runs, small blobs, database and log bytes, and "reclaimable" (collect_garbage's dry run)."""
    def first_run_time(self, flow: str) -> float: ...
    def runs(self, flow: str, limit: int = 0, before: int = 0) -> list[RunRecord]: ...
    def get_run(self, flow: str, run_id: int) -> RunRecord: ...
    def tasks(self, run_id: int, step: str = "") -> list[TaskRecord]: ...
    def get_task(self, run_id: int, task_id: int) -> TaskRecord: ...
    def add_tags(self, run_id: int, tags: list[str]) -> None: ...
    def remove_tags(self, run_id: int, tags: list[str]) -> None: ...
    def create_run(self, flow: str, user: str, system_tags: list[str], params_json: str) -> RunRecord: ...
    def finish_run(self, run_id: int, status: str) -> None: ...
    def record_succeeded_task(self, run_id: int, step: str, task_id: int, artifacts: list[ArtifactRecord],
                              blobs: list[tuple[str, bytes]], started_at: float, finished_at: float) -> None: ...
    def replace_tags(self, run_id: int, remove: list[str], add: list[str]) -> None: ...
