"""GET /v1/backbones: the catalog, with whether each backbone's weights can be loaded now."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from app.deps import ProjectDep, SettingsDep
from app.errors import PROBLEM_RESPONSES
from ml.backbones.catalog import is_available
from ml.backbones.spec import spec_to_public

router = APIRouter(prefix="/v1/backbones", tags=["backbones"], responses=PROBLEM_RESPONSES)


class BackboneList(BaseModel):
    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    has_more: bool = False


@router.get("", response_model=BackboneList, summary="List the backbones jobs can fine-tune")
async def list_backbones(
    request: Request, _project: ProjectDep, settings: SettingsDep
) -> BackboneList:
    catalog = request.app.state.catalog
    cache = settings.local_cache_dir

    def _entries() -> list[dict[str, Any]]:
        return [spec_to_public(s, is_available(s, cache)) for s in catalog.values()]

    return BackboneList(data=await run_in_threadpool(_entries))
