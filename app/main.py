"""create_app(): the FastAPI application and what it holds for its lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import inspect

from app.auth.keys import register_key
from app.backbones.endpoints import router as backbones_router
from app.config import Settings, get_settings
from app.datasets.endpoints import router as datasets_router
from app.db import make_engine, make_session_factory, transaction
from app.errors import install_error_handlers
from app.inference.endpoints import router as inference_router
from app.inference.serving import build_model_cache
from app.jobs.endpoints import router as jobs_router
from app.logging import configure_logging
from app.openapi_links import install_links
from app.ops.endpoints import router as ops_router
from app.ops.guards import EdgeGuardMiddleware
from app.ops.metrics import ApiMetrics
from app.ops.middleware import RequestContextMiddleware
from app.queue import TaskQueue
from app.registry.endpoints import router as registry_router
from app.storage.places import Storage
from app.ttl_cache import TtlCache
from app.ui.install import install_ui
from ml.backbones.catalog import load_catalog

log = logging.getLogger("hone.api")

DESCRIPTION = """Upload a labelled dataset, fine-tune a pretrained backbone, serve the model.
Every `/v1` endpoint needs `Authorization: Bearer <api key>`; errors are RFC 9457 problem details.
"""


class NotMigrated(RuntimeError):
    pass


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.ensure_dirs()
        engine = make_engine(settings.sqlalchemy_url)
        if not inspect(engine).has_table("alembic_version"):
            raise NotMigrated("The registry database is not migrated: run `hone migrate` first.")
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        app.state.queue = TaskQueue(settings)
        app.state.catalog = load_catalog(settings.backbones_files)
        app.state.model_cache = build_model_cache(settings, metrics, app.state.storage)
        await run_in_threadpool(app.state.storage.warm_up)
        if settings.bootstrap_api_key is not None:
            with transaction(app.state.session_factory) as session:
                register_key(session, settings.bootstrap_api_key.get_secret_value(), "default")
        log.info("api ready", extra={"database": engine.url.get_backend_name()})
        try:
            yield
        finally:
            await app.state.model_cache.close()
            app.state.queue.close()
            engine.dispose()

    app = FastAPI(
        title="Hone",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.storage = Storage.from_settings(settings)
    app.state.auth_cache = TtlCache(settings.auth_cache_seconds)
    app.state.resolve_cache = TtlCache(settings.resolve_cache_seconds)
    install_error_handlers(app)
    # The last added runs first: the request id, log and metrics see what the guards refuse.
    app.add_middleware(EdgeGuardMiddleware, body_read_timeout=settings.body_read_timeout_seconds)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    for router in (
        ops_router,
        datasets_router,
        backbones_router,
        jobs_router,
        registry_router,
        inference_router,
    ):
        app.include_router(router)
    # The dashboard at /ui (`/` redirects there): its pages, scripts and security headers.
    install_ui(app)
    install_links(app)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory app.main:app_from_env`."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)
