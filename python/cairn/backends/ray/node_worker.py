"""The fork server on a node: started by a slot actor as
`python FLOW.py --datastore-root CACHE ray-node-worker` from the unpacked
code package, so the flow module is __main__ exactly as in a local run (and
artifacts of classes defined there pickle the same). It then serves the
actor over the local worker's protocol; its tasks put blobs into the node's
cache and through to S3, by way of the slot actor's client (stores/proxy.py).
Never imports Ray, nor boto3."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from ... import _core
from ...errors import CairnException
from ...stores import CachedStore
from ...stores.proxy import ProxyBlobs

FD_VAR = "CAIRN_RAY_NODE_FD"
SPEC_VAR = "CAIRN_RAY_NODE_SPEC"
PARENT_VAR = "CAIRN_RAY_NODE_PARENT"
WITH_VAR = "CAIRN_RAY_NODE_WITH"  # the run's --with options, as JSON
BLOBS_VAR = "CAIRN_RAY_NODE_BLOBS_FD"  # the slot actor's blob proxy (stores/proxy.py)


def serve(flow_cls: type, root: str) -> int:
    from ...runtime.worker import serve as serve_worker

    try:
        fd = int(os.environ[FD_VAR])
        parent = int(os.environ[PARENT_VAR])
        with open(os.environ[SPEC_VAR]) as f:
            spec: dict[str, Any] = json.load(f)
        with_decorators: list[str] = json.loads(os.environ[WITH_VAR])
        blobs_fd = int(os.environ[BLOBS_VAR])
    except (KeyError, ValueError, OSError) as e:
        raise CairnException(f"ray-node-worker is started by cairn's Ray slot actors ({e})") from None
    _core.die_with_parent(parent)
    sock = socket.socket(fileno=fd)
    # As the local worker: each step's decorators resolved before any fork,
    # and the run's parameters taken as checked (the run did, before it
    # started; the payloads carry the same records). Its tasks reach S3
    # through the slot actor, so this process does not load boto3: a smaller
    # process forks and exits faster (stores/proxy.py).
    store = CachedStore(root, ProxyBlobs(blobs_fd))
    serve_worker(flow_cls, spec, sock, parent, root, with_decorators, store)
    return 0
