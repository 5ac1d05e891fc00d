"""Where the S3 datastore is: CAIRN_DATASTORE_SYSROOT_S3 (or Metaflow's
METAFLOW_DATASTORE_SYSROOT_S3) and CAIRN_S3_ENDPOINT_URL (or
METAFLOW_S3_ENDPOINT_URL)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from ..errors import CairnException

SYSROOT_VARS = ("CAIRN_DATASTORE_SYSROOT_S3", "METAFLOW_DATASTORE_SYSROOT_S3")
ENDPOINT_VARS = ("CAIRN_S3_ENDPOINT_URL", "METAFLOW_S3_ENDPOINT_URL")


class S3ConfigError(CairnException):
    headline = "S3 datastore"


@dataclass(frozen=True)
class S3Config:
    bucket: str
    prefix: str            # no leading or trailing slash; may be empty
    endpoint_url: str | None = None

    @classmethod
    def parse(cls, url: str, endpoint_url: str | None = None) -> S3Config:
        if not url.startswith("s3://"):
            raise S3ConfigError(f"expected s3://bucket/prefix, got {url!r}")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise S3ConfigError(f"no bucket in {url!r} (expected s3://bucket/prefix)")
        return cls(bucket, prefix.strip("/"), endpoint_url or None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Config | None:
        """The configured S3 datastore, or None when none is."""
        env = os.environ if environ is None else environ
        url = next((env[v] for v in SYSROOT_VARS if env.get(v)), None)
        if url is None:
            return None
        endpoint = next((env[v] for v in ENDPOINT_VARS if env.get(v)), None)
        return cls.parse(url, endpoint)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def env(self) -> dict[str, str]:
        """The variables that configure this store in another process."""
        out = {SYSROOT_VARS[0]: self.url}
        if self.endpoint_url:
            out[ENDPOINT_VARS[0]] = self.endpoint_url
        return out
