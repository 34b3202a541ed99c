"""Model pages: the list with aliases, a model's versions, a version's page; alias changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from app.deps import SessionDep
from app.pagination import CURSOR_PATTERN
from app.registry import endpoints as registry_api
from app.registry.endpoints import AliasPath, NamePath, VersionPath
from app.registry.schemas import ALIAS_PATTERN, AliasSet
from app.ui.auth import FormPost, PageSigned
from app.ui.render import page, render
from app.ui.views import models as views
from app.ui.views.common import PAGE_SIZE, paging

router = APIRouter(prefix="/ui/models", include_in_schema=False)
Cursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN)]


@router.get("")
@page
def models_page(
    request: Request, signed: PageSigned, session: SessionDep, after: Cursor = None
) -> Response:
    listing = registry_api.list_models(signed.project, session, PAGE_SIZE, after)
    cursor = listing.data[-1].name if listing.data else None
    context = {
        "models": listing.data,
        "paging": paging("/ui/models", listing.data, listing.has_more, after, cursor),
    }
    return render(request, "models.html", context)


@router.get("/{name}")
@page
def model_page(
    name: NamePath, request: Request, signed: PageSigned, session: SessionDep
) -> Response:
    model = registry_api.get_model(name, signed.project, session)
    return render(request, "model.html", {"model": model})


@router.get("/{name}/versions/{version}")
@page
def version_page(
    name: NamePath, version: VersionPath, request: Request, signed: PageSigned, session: SessionDep
) -> Response:
    model = registry_api.get_model(name, signed.project, session)
    row = registry_api.get_version(name, version, signed.project, session)
    return render(request, "version.html", views.version_page(model, row))


@router.post("/{name}/aliases")
@page
def set_alias(
    name: NamePath,
    request: Request,
    signed: FormPost,
    session: SessionDep,
    alias: Annotated[str, Form(pattern=ALIAS_PATTERN)],
    version: Annotated[int, Form(ge=1, le=2**31 - 1)],
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    registry_api.set_alias(name, alias, AliasSet(version=version), request, signed.project, session)
    return RedirectResponse(_back(back, f"/ui/models/{name}"), status_code=303)


@router.post("/{name}/aliases/{alias}/delete")
@page
def delete_alias(
    name: NamePath,
    alias: AliasPath,
    request: Request,
    signed: FormPost,
    session: SessionDep,
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    registry_api.delete_alias(name, alias, request, signed.project, session)
    return RedirectResponse(_back(back, f"/ui/models/{name}"), status_code=303)


def _back(target: str, default: str) -> str:
    """Where the form came from, if it is one of our model pages."""
    if target.startswith("/ui/models/") and "//" not in target and "\\" not in target:
        return target
    return default
