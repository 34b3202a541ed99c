"""API shapes of fine-tuning jobs and their events (separate from the ORM rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, StrictBool, WithJsonSchema
from pydantic.config import JsonDict

from app.bounds import BoundedInt, NonNegativeInt, ResourceId
from app.datasets.schemas import ErrorInfo
from app.jobs.states import JobStatus
from app.models import Job, JobEvent
from app.pagination import ListOf
from ml.training.hparams import AUTO, FIELDS, Choice
from ml.training.spec import ContractMethod

MODEL_NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,99}$"
Method = Literal["auto", "linear_probe", "full"]
# Smart-mode union: 3 stays an int, 3.0 a float, true a bool; "auto" (or a typo) a string,
# which validate_hyperparameters then judges with a helpful message. Bounded like every
# integer a client sends (an integer past the bound is read as a float, and judged as one).
HyperValue = bool | BoundedInt | float | Annotated[str, Field(max_length=100)]


def _hyperparameter_schema(name: str) -> dict[str, Any]:
    rule = FIELDS[name]
    if isinstance(rule, Choice):
        return {"enum": [*rule.options, AUTO]}
    if rule.kind is bool:
        value: dict[str, Any] = {"type": "boolean"}
    else:
        value = {"type": "integer" if rule.kind is int else "number"}
        value["exclusiveMinimum" if rule.low_open else "minimum"] = rule.low
        value["exclusiveMaximum" if rule.high_open else "maximum"] = rule.high
    return {"anyOf": [value, {"const": AUTO}]}


# What the service accepts, as documented: the known names, each a value in its range or
# "auto". Validation itself is validate_hyperparameters', whose messages say what is wrong.
HYPERPARAMETERS_SCHEMA = {
    "type": "object",
    "properties": {name: _hyperparameter_schema(name) for name in FIELDS},
    "additionalProperties": False,
    "description": 'Each a value or "auto" (the default, chosen from the data and backbone).',
}
# Held-out data comes from a validation dataset or a split of the training one, not both.
_ONE_VALIDATION_SOURCE: JsonDict = {
    "not": {
        "required": ["validation_dataset_id", "validation_split"],
        "properties": {
            "validation_dataset_id": {"type": "string"},
            "validation_split": {"type": "number"},
        },
    }
}


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_VALIDATION_SOURCE)

    dataset_id: ResourceId
    backbone: str = Field(max_length=200, description="An id from GET /v1/backbones.")
    model_name: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    method: Method = "auto"
    validation_dataset_id: ResourceId | None = None
    validation_split: float | None = Field(
        default=None, ge=0.05, le=0.5, description="Held-out fraction; default chosen by size."
    )
    hyperparameters: Annotated[
        dict[Annotated[str, Field(max_length=100)], HyperValue],
        WithJsonSchema(HYPERPARAMETERS_SCHEMA),
    ] = Field(default_factory=dict, max_length=50)
    seed: NonNegativeInt = 0
    # Strict: "yes" or 1 is a 422, never read as true (a dry run must not become a real job).
    dry_run: StrictBool = Field(
        default=False,
        description="true: check the request as a create would, and answer 200 with the "
        "resolved plan and its estimated time instead of creating and queueing a job.",
    )


class Progress(BaseModel):
    epoch: int = 0
    epochs: int | None = None
    step: int = 0
    total_steps: int | None = None
    eta_seconds: float | None = None


class ModelVersionRef(BaseModel):
    name: str
    version: int


class JobRead(BaseModel):
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    status: JobStatus
    dataset_id: str
    validation_dataset_id: str | None
    backbone: str
    model_name: str
    method: Method
    method_chosen: ContractMethod | None = Field(
        description="What a succeeded job kept: `auto` chooses one of these on validation."
    )
    method_reason: str | None = Field(description="Why that method was kept, in words.")
    hyperparameters: dict[str, Any]
    seed: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: Progress
    metrics: dict[str, Any]
    model_version: ModelVersionRef | None
    error: ErrorInfo | None

    @classmethod
    def of(cls, row: Job, version: tuple[str, int] | None) -> JobRead:
        error = None
        if row.error_code:
            error = ErrorInfo(code=row.error_code, message=row.error_message or "")
        return cls(
            id=row.id,
            status=row.status,
            dataset_id=row.dataset_id,
            validation_dataset_id=row.validation_dataset_id,
            backbone=row.backbone,
            model_name=row.model_name,
            method=row.method,
            method_chosen=cast(Any, row.method_chosen),
            method_reason=row.method_reason,
            hyperparameters=row.hyperparameters or row.requested_hyperparameters,
            seed=row.seed,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            progress=Progress.model_validate(row.progress or {}),
            metrics=row.metrics,
            model_version=ModelVersionRef(name=version[0], version=version[1]) if version else None,
            error=error,
        )


JobList = ListOf[JobRead]


class PlanCandidate(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. lp_ft's estimated_epoch_seconds

    name: str = Field(description="`classical`, `linear_probe` or `lp_ft`.")
    description: str
    estimated_seconds: float


class PlanRead(BaseModel):
    method: Method
    hyperparameters: dict[str, Any] = Field(
        description="Every value resolved: what the job, created now, will train with."
    )
    candidates: list[PlanCandidate] = Field(
        description="What the job tries, in order, each with its estimated seconds; `auto` "
        "keeps the best of them on validation."
    )
    estimated_seconds: float = Field(
        description="The whole job on an idle worker of `device`'s class, fixed costs included."
    )
    time_budget_seconds: float | None = Field(
        description="`auto`: the most its fine-tuning may take; null for the other methods."
    )
    device: Literal["cpu", "cuda"] = Field(
        description="The worker class the estimate is for (the service's HONE_WORKER_DEVICE)."
    )


class JobPlanRead(BaseModel):
    """The answer to a dry run: the job as it would be created, and its plan."""

    object: Literal["job.plan"] = "job.plan"
    dry_run: Literal[True] = True
    dataset_id: str
    validation_dataset_id: str | None
    backbone: str
    model_name: str
    method: Method
    seed: int
    num_examples: int = Field(description="Examples in the training dataset.")
    num_validation_examples: int | None = Field(
        description="Examples in the validation dataset; null when validation is split off "
        "the training dataset."
    )
    plan: PlanRead


class EventRead(BaseModel):
    id: int
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: datetime
    level: Literal["info", "warn", "error"]
    type: Literal["message", "metrics"]
    message: str
    data: dict[str, Any] | None

    @classmethod
    def of(cls, row: JobEvent) -> EventRead:
        return cls(
            id=row.id,
            created_at=row.created_at,
            level=row.level,
            type=row.type,
            message=row.message,
            data=row.data,
        )


EventList = ListOf[EventRead]
