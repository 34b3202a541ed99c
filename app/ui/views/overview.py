"""The overview: what is running, and the newest datasets, jobs and models."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.datasets import endpoints as datasets_api
from app.jobs import endpoints as jobs_api
from app.models import Project
from app.registry import endpoints as registry_api

RECENT = 5


def build(project: Project, session: Session) -> dict[str, Any]:
    datasets = datasets_api.list_datasets(project, session, limit=RECENT, after=None)
    jobs = jobs_api.list_jobs(project, session, None, None, limit=RECENT, after=None)
    running = jobs_api.list_jobs(project, session, "running", None, limit=RECENT, after=None)
    models = registry_api.list_models(project, session, limit=RECENT, after=None)
    return {
        "datasets": datasets.data,
        "jobs": jobs.data,
        "running": running.data,
        "models": models.data,
        "empty": not (datasets.data or jobs.data or models.data),
    }
