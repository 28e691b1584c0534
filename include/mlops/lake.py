"""The lake layout: every key the pipeline reads or writes, under one root URI.

Locally the root is ``file://<MLOPS_HOME>/lake``; on the aws target it is
``s3://<aws.lake_bucket>``. Keys are identical in both, so a path printed by a local run
says exactly where the same object lives on S3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from mlops.config import LakeConfig, PipelineConfig, mlops_home

DMS_FULL_LOAD_PREFIX = "LOAD"


@dataclass(frozen=True)
class Lake:
    """Builds lake URIs; pure string work, no I/O."""

    root: str
    layout: LakeConfig

    @classmethod
    def for_target(cls, config: PipelineConfig, target: str) -> Lake:
        """The lake of ``target`` ('local' or 'aws')."""
        if target == "aws":
            return cls(root=f"s3://{config.aws.lake_bucket}", layout=config.lake)
        local = Path(config.lake.local_root) if config.lake.local_root else mlops_home() / "lake"
        return cls(root=local.resolve().as_uri(), layout=config.lake)

    def uri(self, *parts: str) -> str:
        """Join key parts under the root: ``uri('raw/dms', 'shop')`` -> ``<root>/raw/dms/shop``."""
        key = "/".join(p.strip("/") for p in parts if p)
        return f"{self.root.rstrip('/')}/{key}" if key else self.root

    def raw_table(self, schema: str, table: str) -> str:
        """Folder of a replicated table, as the DMS S3 target lays it out."""
        return self.uri(self.layout.raw_prefix, schema, table)

    def curated(self, dataset: str) -> str:
        return self.uri(self.layout.curated_prefix, dataset)

    def reports(self, *parts: str) -> str:
        return self.uri(self.layout.reports_prefix, *parts)

    def models(self, *parts: str) -> str:
        return self.uri(self.layout.models_prefix, *parts)

    def athena_results(self, *parts: str) -> str:
        return self.uri(self.layout.athena_results_prefix, *parts)

    def capture(self, *parts: str) -> str:
        return self.uri(self.layout.capture_prefix, *parts)

    def monitoring(self, *parts: str) -> str:
        return self.uri(self.layout.monitoring_prefix, *parts)

    def staging(self, *parts: str) -> str:
        return self.uri(self.layout.staging_prefix, *parts)


def local_path(uri: str) -> Path:
    """The filesystem path of a ``file://`` URI; raises ValueError for any other scheme."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ValueError(f"{uri!r} is not a local file:// URI; local stand-ins only read and write the local lake")
    return Path(parsed.path)
