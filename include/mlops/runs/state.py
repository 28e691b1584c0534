"""Where ``mlops runs apply`` records what it applied: a local JSON file, or an S3 object in CodePipeline."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StateStore:
    """The applied state at ``uri`` (``s3://bucket/key`` or a file path); missing state is empty."""

    uri: str

    @classmethod
    def at(cls, uri: str | None) -> StateStore:
        if uri:
            return cls(uri)
        from mlops.config import mlops_home

        return cls(str(mlops_home() / "runs" / "applied.json"))

    def _s3(self) -> tuple[Any, str, str]:
        import boto3

        bucket, _, key = self.uri.removeprefix("s3://").partition("/")
        return boto3.client("s3"), bucket, key

    def read(self) -> dict[str, Any]:
        if self.uri.startswith("s3://"):
            client, bucket, key = self._s3()
            try:
                return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
            except client.exceptions.NoSuchKey:
                return {}
        path = Path(self.uri)
        return json.loads(path.read_text()) if path.exists() else {}

    def write(self, state: dict[str, Any]) -> None:
        text = json.dumps(state, indent=2, sort_keys=True)
        if self.uri.startswith("s3://"):
            client, bucket, key = self._s3()
            client.put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType="application/json")
            return
        path = Path(self.uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
