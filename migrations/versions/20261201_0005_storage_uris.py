"""model_versions.artifact_uri becomes a URI; directories an earlier Hone wrote get listings

Before the storage seam, a version's artifact_uri was a bare path under the data directory,
and datasets and versions were directories there without the `.published` listing readers now
require (app/storage/store.py). On a local store (no HONE_STORAGE_URL, or a file:// one) this
revision rewrites bare paths as file:// URIs and lists every dataset and version directory
already in the store, so an upgraded install keeps serving and training from what it has.
An S3 store has nothing from before the seam.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_versions = sa.table(
    "model_versions", sa.column("id", sa.String), sa.column("artifact_uri", sa.Text)
)
_datasets = sa.table("datasets", sa.column("sha256", sa.String))


def upgrade() -> None:
    from app.config import get_settings
    from app.storage import layout
    from app.storage.store import Store

    conn = op.get_bind()
    rows = conn.execute(sa.select(_versions.c.id, _versions.c.artifact_uri)).all()
    for version_id, uri in rows:
        if "://" not in uri and uri.startswith("/"):
            conn.execute(
                sa.update(_versions)
                .where(_versions.c.id == version_id)
                .values(artifact_uri=f"file://{uri}")
            )
    settings = get_settings()
    store = Store(settings.store_url)
    if not store.local:
        return
    for (uri,) in conn.execute(sa.select(_versions.c.artifact_uri)).all():
        try:
            store.adopt_dir(store.key_of(uri))
        except ValueError:
            continue  # a version outside this store: written with another data directory
    shas = conn.execute(sa.select(_datasets.c.sha256).where(_datasets.c.sha256.is_not(None)))
    for (sha,) in shas.all():
        store.adopt_dir(layout.dataset(sha))


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_versions.c.id, _versions.c.artifact_uri)).all()
    for version_id, uri in rows:
        if uri.startswith("file://"):
            conn.execute(
                sa.update(_versions)
                .where(_versions.c.id == version_id)
                .values(artifact_uri=uri.removeprefix("file://"))
            )
