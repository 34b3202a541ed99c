"""/v1/datasets: upload (a file, a folder of images, or bytes), list, get, wait, delete."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from hone._transport import Transport
from hone.errors import DatasetFailed, WaitTimeout
from hone.pagination import paginate
from hone.types import Dataset
from hone.uploads import Progress, prepare

# An upload's answer comes once the server has the whole body and has looked at it (up to
# its HONE_UPLOAD_WAIT_SECONDS): allow more than an ordinary request's timeout.
UPLOAD_READ_TIMEOUT_SECONDS = 120.0


def new_idempotency_key() -> str:
    return f"hone-py-{uuid.uuid4().hex}"


class Datasets:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def upload(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        task: str,
        name: str | None = None,
        text_column: str | None = None,
        label_column: str | None = None,
        target_column: str | None = None,
        multilabel: bool | None = None,
        filename: str | None = None,
        progress: Progress | None = None,
        idempotency_key: str | None = None,
        wait: bool = False,
        wait_timeout: float | None = None,
    ) -> Dataset:
        """Upload a dataset and return it (`status` "ready", or "processing" when the server
        is still auditing it; `wait=True` waits that out too).

        `source` is a path to an image .zip, a text .csv or .jsonl, a FOLDER of images (one
        sub-folder per label, or a labels.csv at its root: zipped as it is sent, never whole
        in memory or on disk), or the bytes of one of those (`filename` then names the kind,
        e.g. "data.csv"; it is guessed otherwise). `progress(sent, total)` is called as the
        bytes go out (`total` None for a folder, whose zip's size is not known up front).

            ds = client.datasets.upload("photos/", task="image_classification", wait=True)
            print(ds.num_examples, ds.label_counts, ds.report["warnings"])
        """
        upload = prepare(source, filename)
        fields: dict[str, str] = {"task": task}
        if name is None and upload.folder:
            name = Path(source).expanduser().resolve().name  # type: ignore[arg-type]
        optional = {
            "name": name,
            "text_column": text_column,
            "label_column": label_column,
            "target_column": target_column,
        }
        fields |= {k: v for k, v in optional.items() if v is not None}
        if multilabel is not None:
            fields["multilabel"] = "true" if multilabel else "false"

        def body(resources: ExitStack) -> dict[str, Any]:
            reader = upload.open(progress)
            resources.callback(reader.close)
            return {"data": fields, "files": {"file": (upload.filename, reader)}}

        answer = self._transport.json(
            "POST",
            "/v1/datasets",
            headers={"Idempotency-Key": idempotency_key or new_idempotency_key()},
            body=body,
            timeout=max(self._transport.timeout, UPLOAD_READ_TIMEOUT_SECONDS),
        )
        dataset = Dataset.model_validate(answer)
        if wait:
            return self.wait(dataset.id, timeout=wait_timeout)
        return dataset

    def list(self, *, limit: int | None = None) -> Iterator[Dataset]:
        """The project's datasets, newest first (at most `limit`), fetched page by page."""
        return paginate(self._transport, "/v1/datasets", Dataset, limit=limit)

    def get(self, dataset_id: str) -> Dataset:
        return Dataset.model_validate(self._transport.json("GET", f"/v1/datasets/{dataset_id}"))

    def wait(self, dataset_id: str, *, timeout: float | None = None) -> Dataset:
        """The dataset once it is no longer processing; DatasetFailed if its processing
        failed (`.dataset.error` says why), WaitTimeout after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.2
        while True:
            dataset = self.get(dataset_id)
            if dataset.status == "failed":
                raise DatasetFailed(dataset)
            if dataset.status != "processing":
                return dataset
            if deadline is not None and time.monotonic() + delay > deadline:
                raise WaitTimeout(f"dataset {dataset_id} is still processing after {timeout} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def delete(self, dataset_id: str) -> dict[str, Any]:
        """Delete the dataset (Conflict while a running job uses it). The answer lists the
        model versions trained on it, which stay."""
        answer: dict[str, Any] = self._transport.json("DELETE", f"/v1/datasets/{dataset_id}")
        return answer
