"""The Hone client: a Python SDK and the `hone` user commands.

    import hone

    client = hone.Client()  # HONE_API_URL / HONE_API_KEY, or what `hone login` saved
    ds = client.datasets.upload("photos/", task="image_classification", wait=True)
    job = client.jobs.wait(
        client.jobs.create(dataset_id=ds.id, backbone="efficientnet_lite0", model_name="pets").id
    )
    print(client.predict("pets", files=["cat.jpg"]).predictions[0].label)

See `hone.Client` for more.
"""

from hone.client import Client
from hone.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequest,
    Conflict,
    DatasetFailed,
    HoneError,
    IntegrityError,
    JobFailed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    UnprocessableEntity,
    WaitTimeout,
)
from hone.types import (
    Backbone,
    Dataset,
    Event,
    Job,
    JobPlan,
    LabelScore,
    Model,
    ModelDetail,
    ModelVersion,
    Prediction,
    PredictResponse,
    VersionRef,
    VersionSummary,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "Backbone",
    "BadRequest",
    "Client",
    "Conflict",
    "Dataset",
    "DatasetFailed",
    "Event",
    "HoneError",
    "IntegrityError",
    "Job",
    "JobFailed",
    "JobPlan",
    "LabelScore",
    "Model",
    "ModelDetail",
    "ModelVersion",
    "NotFound",
    "PayloadTooLarge",
    "PredictResponse",
    "Prediction",
    "RateLimited",
    "ServiceUnavailable",
    "UnprocessableEntity",
    "VersionRef",
    "VersionSummary",
    "WaitTimeout",
]
