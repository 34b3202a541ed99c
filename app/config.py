"""Hone's settings: the only module that reads the environment.

Every field maps to an environment variable with the ``HONE_`` prefix (``data_dir`` is
``HONE_DATA_DIR``). Defaults are the embedded ones: a SQLite registry and a server-less Celery
broker under the data directory, so a laptop needs no PostgreSQL or Redis.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "hone"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HONE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Datasets, model artifacts, caches, and the embedded database and broker.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the registry; default: SQLite file hone.db in data_dir. "
        "Production: postgresql+psycopg://user:pass@host/db",
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker URL; default: a server-less filesystem broker in data_dir. "
        "Production: redis://host:6379/0",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_upload_bytes: int = Field(
        default=2 * 1024**3,
        gt=0,
        description="Largest accepted upload; past it the API answers 413.",
    )
    max_uncompressed_bytes: int = Field(
        default=4 * 1024**3, gt=0, description="Cap on a zip's total decompressed size."
    )
    max_archive_entries: int = Field(default=200_000, gt=0)
    max_image_pixels: int = Field(default=40_000_000, gt=0, description="Decompression-bomb cap.")
    bootstrap_api_key: SecretStr | None = Field(
        default=None,
        description="When set, this key is valid for the `default` project (compose, scripts, CI).",
    )
    upload_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long POST /v1/datasets waits for processing before answering 202.",
    )
    backbones_files: list[Path] = Field(
        default_factory=list,
        description="JSON files with extra backbone catalog entries (a JSON list of paths).",
    )
    job_max_attempts: int = Field(
        default=3, ge=1, description="Deliveries of one job before it is failed for good."
    )
    job_max_runtime_seconds: int = Field(
        default=24 * 3600,
        gt=0,
        description="Longest allowed job; the broker's visibility "
        "timeout is set above it so a running job is never redelivered early.",
    )
    lease_seconds: float = Field(
        default=60.0, gt=0, description="A training attempt's lease; renewed by heartbeats."
    )
    checkpoint_every_seconds: float = Field(default=300.0, gt=0)
    worker_concurrency: int = Field(default=1, ge=1)
    log_json: bool = Field(default=True, description="One JSON object per log line.")
    log_level: str = "INFO"
    # Serving
    model_cache_bytes: int = Field(
        default=4 * 1024**3, gt=0, description="Memory budget of each API process's model cache."
    )
    auth_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a valid API key is remembered (0: never)."
    )
    resolve_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        description="How long a prediction's version resolution is remembered (0: never).",
    )
    serve_device: str = Field(
        default="auto",
        description="Where predictions run: auto (the GPU when there is one), cpu, cuda[:N].",
    )
    max_batch_size: int = Field(default=8, ge=1, description="Largest batch the batcher forms.")
    max_wait_ms: float = Field(
        default=0.0,
        ge=0,
        description="How long a lone request waits for batch-mates (0: batches form from what "
        "queues during the previous forward pass).",
    )
    max_queue: int = Field(default=256, ge=1, description="Queued inputs per model before 429.")
    max_inputs_per_request: int = Field(default=64, ge=1)
    max_text_chars: int = Field(default=20_000, ge=1)
    max_image_bytes: int = Field(default=20 * 1024**2, ge=1)
    storage_url: str | None = Field(
        default=None,
        description="fsspec URL for model artifacts (e.g. s3://bucket/hone); default: data_dir.",
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'hone.db'}"

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def embedded_broker(self) -> bool:
        return self.celery_broker_url.startswith("filesystem://")

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    def ensure_dirs(self) -> None:
        for sub in (
            "uploads",
            "datasets",
            "jobs",
            "cache",
            "models",
            "broker/queue",
            "broker/done",
        ):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
