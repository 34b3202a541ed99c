"""Dataset pages: the list with the upload form, a dataset's audit, example thumbnails."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from app.bounds import ResourceId
from app.datasets import endpoints as datasets_api
from app.deps import SessionDep, StorageDep
from app.errors import NotFound
from app.pagination import CURSOR_PATTERN
from app.ui import examples
from app.ui.auth import ApiSigned, PageSigned
from app.ui.render import page, render
from app.ui.views import datasets as views
from app.ui.views.common import PAGE_SIZE, paging
from ml.tasks import task_names

router = APIRouter(prefix="/ui/datasets", include_in_schema=False)
Cursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN)]
DatasetId = Annotated[ResourceId, Path()]


@router.get("")
@page
def datasets_page(
    request: Request, signed: PageSigned, session: SessionDep, after: Cursor = None
) -> Response:
    listing = datasets_api.list_datasets(signed.project, session, limit=PAGE_SIZE, after=after)
    cursor = listing.data[-1].id if listing.data else None
    context = {
        "datasets": listing.data,
        "paging": paging("/ui/datasets", listing.data, listing.has_more, after, cursor),
        "tasks": task_names(),
    }
    return render(request, "datasets.html", context)


@router.get("/{dataset_id}")
@page
def dataset_page(
    dataset_id: DatasetId,
    request: Request,
    signed: PageSigned,
    session: SessionDep,
    storage: StorageDep,
) -> Response:
    dataset = datasets_api.get_dataset(dataset_id, signed.project, session)
    stored = examples.load(storage, dataset.sha256) if dataset.status == "ready" else None
    return render(request, "dataset.html", views.build(dataset, stored))


@router.get("/{dataset_id}/examples/{index}.png")
def example_thumbnail(
    dataset_id: DatasetId,
    index: Annotated[int, Path(ge=0, le=10_000_000)],
    signed: ApiSigned,
    session: SessionDep,
    storage: StorageDep,
) -> Response:
    dataset = datasets_api.get_dataset(dataset_id, signed.project, session)
    session.close()  # the image is read without holding a database connection
    stored = examples.load(storage, dataset.sha256)
    example = stored.get(index) if stored else None
    picture = examples.thumbnail(example) if example else None
    if picture is None:
        raise NotFound(f"Dataset {dataset_id} has no image example {index}.", code="no_example")
    # Content-addressed: example `index` of this dataset never changes.
    headers = {"Cache-Control": "private, max-age=86400, immutable"}
    return Response(picture, media_type="image/png", headers=headers)
