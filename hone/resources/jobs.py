"""/v1/jobs: create (or plan) fine-tuning jobs, follow them live, wait for them, cancel."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from hone._transport import Transport
from hone.errors import JobFailed, WaitTimeout
from hone.events import stream_events
from hone.pagination import paginate
from hone.resources.datasets import new_idempotency_key
from hone.types import Event, Job, JobPlan


class Jobs:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def create(
        self,
        *,
        dataset_id: str,
        backbone: str,
        model_name: str,
        method: str = "auto",
        hyperparameters: dict[str, Any] | None = None,
        validation_dataset_id: str | None = None,
        validation_split: float | None = None,
        seed: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Queue a fine-tuning job. It carries an Idempotency-Key (a new one unless given), so
        a retried create, or a second call with the same key and body, makes one job.

            job = client.jobs.create(dataset_id=ds.id, backbone="minilm_l6", model_name="m")
        """
        body = _body(
            dataset_id, backbone, model_name, method, hyperparameters,
            validation_dataset_id, validation_split, seed,
        )  # fmt: skip
        key = idempotency_key or new_idempotency_key()
        answer = self._transport.json(
            "POST", "/v1/jobs", json=body, headers={"Idempotency-Key": key}
        )
        return Job.model_validate(answer)

    def plan(
        self,
        *,
        dataset_id: str,
        backbone: str,
        model_name: str,
        method: str = "auto",
        hyperparameters: dict[str, Any] | None = None,
        validation_dataset_id: str | None = None,
        validation_split: float | None = None,
        seed: int | None = None,
    ) -> JobPlan:
        """What `create` with these arguments would run, and its estimated time (a dry run:
        nothing is created or queued)."""
        body = _body(
            dataset_id, backbone, model_name, method, hyperparameters,
            validation_dataset_id, validation_split, seed,
        )  # fmt: skip
        answer = self._transport.json("POST", "/v1/jobs", json=body | {"dry_run": True})
        return JobPlan.model_validate(answer)

    def get(self, job_id: str) -> Job:
        return Job.model_validate(self._transport.json("GET", f"/v1/jobs/{job_id}"))

    def list(
        self, *, status: str | None = None, model_name: str | None = None, limit: int | None = None
    ) -> Iterator[Job]:
        """The project's jobs, newest first, optionally of one status or model."""
        params = {"status": status, "model_name": model_name}
        return paginate(self._transport, "/v1/jobs", Job, params=params, limit=limit)

    def cancel(self, job_id: str) -> Job:
        """Ask the job to stop (Conflict if it has already finished); it is `cancelling`
        until its worker stops, then `cancelled`."""
        return Job.model_validate(self._transport.json("POST", f"/v1/jobs/{job_id}/cancel"))

    def events(self, job_id: str, *, limit: int | None = None) -> Iterator[Event]:
        """The job's log so far, newest first (at most `limit` entries)."""
        return paginate(self._transport, f"/v1/jobs/{job_id}/events", Event, limit=limit)

    def stream(self, job_id: str, *, after: int | None = None) -> Iterator[Event]:
        """The job's events live, oldest first, from the first (or those after the event id
        `after`), until the job has finished. A dropped connection is resumed where it
        stopped (Last-Event-ID), so no event is lost or repeated.

            for event in client.jobs.stream(job.id):
                print(event.message, event.data or "")
        """
        self.get(job_id)  # an unknown job or a refused key raises here, not mid-iteration
        return stream_events(self._transport, job_id, after)

    def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> Job:
        """The job once it has finished, following its live events (each passed to
        `on_event`, oldest first). Raises JobFailed (with `.job`) if it failed or was
        cancelled, WaitTimeout after `timeout` seconds.

            job = client.jobs.wait(job.id, on_event=lambda e: print(e.message))
            print(job.model_version.version, job.metrics)
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        job = self.get(job_id)
        if not job.done or on_event is not None:
            for event in stream_events(self._transport, job_id, None, deadline):
                if on_event is not None:
                    on_event(event)
            job = self.get(job_id)
        delay = 0.2
        while not job.done:  # the stream ended with the job; a replica may lag behind it
            if deadline is not None and time.monotonic() + delay > deadline:
                raise WaitTimeout(f"job {job_id} did not finish in {timeout} s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            job = self.get(job_id)
        if job.status != "succeeded":
            raise JobFailed(job)
        return job


def _body(
    dataset_id: str,
    backbone: str,
    model_name: str,
    method: str,
    hyperparameters: dict[str, Any] | None,
    validation_dataset_id: str | None,
    validation_split: float | None,
    seed: int | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "dataset_id": dataset_id,
        "backbone": backbone,
        "model_name": model_name,
        "method": method,
    }
    optional = {
        "hyperparameters": hyperparameters,
        "validation_dataset_id": validation_dataset_id,
        "validation_split": validation_split,
        "seed": seed,
    }
    return body | {k: v for k, v in optional.items() if v is not None}
