"""Blob stores beyond the local folder: a remote object store (S3) behind a
local cache that is an ordinary cairn blob store. Design: docs/ray.md.

Nothing here imports boto3 until an S3 datastore is configured."""

from __future__ import annotations

from .cached import CachedStore, RemoteBlobs, open_store, remote_from_env
from .config import S3Config

__all__ = ["CachedStore", "RemoteBlobs", "S3Config", "open_store", "remote_from_env"]
