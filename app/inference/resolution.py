"""Which version a prediction request means, remembered briefly per API process.

Resolving takes several registry queries (model, `production` alias, version or newest ready
one); a prediction that pays them every time spends more on the database than on anything
else but the forward pass. Answers are kept for `resolve_cache_seconds` (app/ttl_cache.py).
Registry changes made through this process (an alias set or removed, a version deleted)
forget the model's entries at once; those made through another API process, and a newly
ready version, are seen within that time. Errors (404, 409) are never remembered.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app.registry.service import resolve_version
from app.ttl_cache import TtlCache

# (project id, model name, ?version=, ?alias=)
ResolveKey = tuple[str, str, int | None, str | None]


@dataclass(frozen=True)
class Resolved:
    version_id: str
    number: int
    task: str
    artifact_uri: str


def _resolve(sessions: sessionmaker[Session], key: ResolveKey) -> Resolved:
    project_id, name, version, alias = key
    with sessions() as session:
        _model, row = resolve_version(session, project_id, name, version=version, alias=alias)
        return Resolved(row.id, row.version, row.task, row.artifact_uri)


async def resolve(
    request: Request, project_id: str, name: str, version: int | None, alias: str | None
) -> Resolved:
    cache: TtlCache[ResolveKey, Resolved] = request.app.state.resolve_cache
    key: ResolveKey = (project_id, name, version, alias)
    resolved = cache.get(key)
    if resolved is None:
        resolved = await run_in_threadpool(_resolve, request.app.state.session_factory, key)
        cache.put(key, resolved)
    return resolved


def forget_model(request: Request, project_id: str, name: str) -> None:
    """Drop what this process remembers about the model (its aliases or versions changed)."""
    cache: TtlCache[ResolveKey, Resolved] | None = getattr(request.app.state, "resolve_cache", None)
    if cache is not None:
        cache.discard_where(lambda key: key[0] == project_id and key[1] == name)
