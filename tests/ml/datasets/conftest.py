"""Helpers for the dataset-ingestion tests: run ingest into a private root, inspect results."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from ml.datasets.errors import IngestError
from ml.datasets.ingest import IngestResult, ingest
from ml.datasets.options import IngestLimits, IngestOptions


@dataclass
class Store:
    """A datasets root and scratch directory of one test."""

    root: Path
    scratch: Path

    def ingest(
        self,
        upload: Path,
        task: str,
        limits: IngestLimits | None = None,
        **options: object,
    ) -> IngestResult:
        opts = IngestOptions(task=task, filename=upload.name, **options)  # type: ignore[arg-type]
        return ingest(upload, opts, limits or IngestLimits(), self.root, self.scratch)

    def fails(
        self, upload: Path, task: str, limits: IngestLimits | None = None, **options: object
    ) -> IngestError:
        """Ingest must fail, leaving nothing behind in the root or the scratch space."""
        with pytest.raises(IngestError) as caught:
            self.ingest(upload, task, limits, **options)
        assert not self.root.exists() or not any(self.root.iterdir())
        assert not self.scratch.exists() or not any(self.scratch.iterdir())
        return caught.value

    @staticmethod
    def skipped(result: IngestResult) -> dict[str, str]:
        """{source: reason} of the report's skipped items."""
        return {entry["source"]: entry["reason"] for entry in result.report["skipped"]}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(root=tmp_path / "datasets", scratch=tmp_path / "scratch")
