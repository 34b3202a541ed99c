"""Hone's settings: the only module that reads the environment.

Every field maps to an environment variable with the ``HONE_`` prefix (``data_dir`` is
``HONE_DATA_DIR``). Defaults are the embedded ones: a SQLite registry and a server-less Celery
broker under the data directory, so a laptop needs no PostgreSQL or Redis.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError
from sqlalchemy.engine import make_url

from app.auth.key_format import key_problem

BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "sqs", "filesystem")
# One GPU as CUDA_VISIBLE_DEVICES names it: an index, or a GPU or MIG instance UUID.
GPU_ID = re.compile(r"[0-9]+|GPU-[0-9a-fA-F-]+|MIG-[0-9A-Za-z/._-]+")


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
    max_image_pixels: int = Field(
        default=40_000_000,
        gt=0,
        description="Most pixels (width x height) of an image, in a dataset and in a prediction "
        "request: a decompression-bomb cap.",
    )
    bootstrap_api_key: SecretStr | None = Field(
        default=None,
        description="When set, this key is valid for the `default` project (compose, scripts, CI).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, GET /metrics needs `Authorization: Bearer <token>` (Prometheus: "
        "`authorization: {credentials: <token>}` in the scrape config); unset, it is open.",
    )
    body_read_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long the API waits for the next chunk of a request body before it "
        "answers 408 and closes the connection (a stalled upload holds nothing longer).",
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
    train_devices: str | None = Field(
        default=None,
        description="The GPUs a worker trains on, one training process each, e.g. 0,1,2: "
        "indices as nvidia-smi numbers them, or GPU-/MIG- UUIDs. Each pool process sees only "
        "its own (CUDA_VISIBLE_DEVICES). Default: every GPU the worker can see "
        "(CUDA_VISIBLE_DEVICES when set, else nvidia-smi -L); none on a CPU-only host.",
    )
    worker_device: Literal["cpu", "cuda"] = Field(
        default="cpu",
        description="The class of host the training workers run on: what a dry run of "
        "POST /v1/jobs plans and times its job for (the API cannot see the workers' hardware).",
    )
    log_json: bool = Field(default=True, description="One JSON object per log line.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
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
        pattern=r"^(auto|cpu|cuda(:[0-9]{1,2})?)$",
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
    # One cap for training and serving each: whatever a dataset accepts, predict accepts.
    max_text_chars: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="Longest text, in characters, in a dataset and in a prediction request "
        "(about 15,000 English words); longer dataset rows are skipped, longer predict inputs "
        "get 422. Models read only their first max_length tokens of it, on both sides.",
    )
    max_image_bytes: int = Field(
        default=50 * 1024**2,
        ge=1,
        description="Largest image file, in bytes, in a dataset and in a prediction request.",
    )
    max_predict_body_bytes: int | None = Field(
        default=None,
        ge=1024,
        description="Largest prediction request body (JSON or multipart), in bytes; past it "
        "the API stops reading and answers 413. Default: room for one max_image_bytes image "
        "as base64 with MIME line breaks, plus 1 MiB.",
    )
    storage_url: str | None = Field(
        default=None,
        description="Where uploads, datasets, checkpoints and model versions are kept: "
        "file:///path or s3://bucket/prefix (any S3-compatible store; credentials and region "
        "from the usual AWS_ variables). Default: data_dir. Every API and worker host of one "
        "deployment must name the same store.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible store that is not AWS (MinIO, Ceph, R2), "
        "e.g. http://minio:9000; AWS_ENDPOINT_URL works too.",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="This host's local cache (downloaded datasets and versions, decoded "
        "images, tokens, features, job work directories); may be deleted at any time. "
        "Default: data_dir/cache.",
    )

    @field_validator("data_dir", "cache_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()

    @field_validator("train_devices")
    @classmethod
    def _train_devices(cls, value: str | None) -> str | None:
        entries = [entry.strip() for entry in (value or "").split(",")]
        if entries == [""]:
            return None  # empty: unset, the default
        if any(not GPU_ID.fullmatch(entry) for entry in entries):
            raise ValueError("expected GPU indices or UUIDs separated by commas, e.g. 0,1,2")
        if len(set(entries)) < len(entries):
            raise ValueError("a GPU is named twice; each training process needs its own")
        return ",".join(entries)

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in ("file", "s3") or not rest.strip("/"):
            raise ValueError("expected file:///absolute/path or s3://bucket/prefix")
        if scheme == "file" and not rest.startswith("/"):
            raise ValueError("a file:// URL needs an absolute path, e.g. file:///srv/hone")
        return value.rstrip("/")

    @field_validator("bootstrap_api_key", "metrics_token")
    @classmethod
    def _usable_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            problem = key_problem(value.get_secret_value())
            if problem:
                raise ValueError(f"the key {problem}; generate one with `openssl rand -hex 32`")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                backend = make_url(value).get_backend_name()
            except Exception:
                backend = ""
            if backend not in ("sqlite", "postgresql"):
                raise ValueError(
                    "expected an SQLAlchemy URL such as "
                    "postgresql+psycopg://user:pass@host:5432/hone or sqlite:////path/hone.db"
                )
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is not None and value.split("://", 1)[0] not in BROKER_SCHEMES:
            raise ValueError(
                f"expected a URL starting with one of {', '.join(BROKER_SCHEMES)}:// "
                "such as redis://host:6379/0"
            )
        return value

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

    @property
    def store_url(self) -> str:
        return self.storage_url or f"file://{self.data_dir}"

    @property
    def local_cache_dir(self) -> Path:
        return self.cache_dir or self.data_dir / "cache"

    def ensure_dirs(self) -> None:
        self.local_cache_dir.mkdir(parents=True, exist_ok=True)
        for sub in (
            "broker/queue",
            "broker/done",
            "broker/control",
        ):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()


class InvalidSettings(Exception):
    """Settings that cannot be used, each described in one line for the operator."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_settings() -> Settings:
    """The settings, or InvalidSettings naming each bad variable, what is wrong and the fix."""
    try:
        return get_settings()
    except ValidationError as exc:
        raise InvalidSettings([_describe(error) for error in exc.errors()]) from None
    except SettingsError as exc:
        # pydantic-settings could not decode a value (a list setting that is not JSON).
        found = re.search(r'field "(\w+)"', str(exc))
        variable = f"HONE_{found.group(1).upper()}" if found else "a HONE_ setting"
        raise InvalidSettings(
            [
                f"{variable} is invalid: it is not JSON. List settings are JSON lists, e.g. "
                f"{variable}='[\"/etc/hone/a.json\"]'; fix it in the environment or .env, or "
                "unset it for the default"
            ]
        ) from None


def _describe(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    variable = f"HONE_{field.upper()}"
    info = Settings.model_fields.get(field)
    value = error.get("input")
    shown = "(hidden)" if field in ("bootstrap_api_key", "metrics_token") else repr(value)
    message = str(error["msg"]).removeprefix("Value error, ")
    default = "" if info is None or info.is_required() else _default_hint(field)
    return f"{variable}={shown} is invalid: {message}. Fix it in the environment or .env{default}."


def _default_hint(field: str) -> str:
    info = Settings.model_fields[field]
    if info.default_factory is not None or info.default is None:
        return ", or unset it for the default"
    return f", or unset it for the default ({info.default!r})"
