"""run_training: one job from stored dataset to a trained, calibrated, measured model.

The task (ml/tasks: classification or regression) supplies the targets, loss, probe, metrics
and calibration; this module is the order they run in. Every method starts with a linear
probe on frozen features (cached across jobs), cross-fitted on every example: its
out-of-fold outputs give honest metrics and the calibration fit. `full` then fine-tunes
everything from the probe's head (LP-FT, the head fitted on the training rows alone); `auto`
does the same but keeps the probe unless fine-tuning beats it on validation, so it is never
worse than the probe there.
"""

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ml.backbones.factory import build_image_model, build_text_model, weights_sha256
from ml.classical import ClassicalFeaturizer, classical_candidate
from ml.datasets.inputs import InputStats
from ml.datasets.store import StoredDataset
from ml.device import configure_threads, pick_device
from ml.tasks import Fitted, ProbeFit, Task
from ml.training.blend import Blend, choose_blend
from ml.training.choice import decide
from ml.training.data import CachedInputs, build_loader, prepare_inputs
from ml.training.examples import JobData, load_job_data
from ml.training.features import extract_features, features_path
from ml.training.finetune import Baseline, FineTuneResult, cpu_state_dict, fine_tune
from ml.training.hparams import given
from ml.training.image_classifier import POOLED_STAGES, MultiDepthClassifier
from ml.training.images import image_preprocessing
from ml.training.model import backbone_fingerprint, classifier_layer, inference_batch_size
from ml.training.outcome import TrainOutcome
from ml.training.plan import Plan, plan_job
from ml.training.probe import install_head
from ml.training.reporting import mark_first_step, preparation_ticker, timed_phase
from ml.training.search import (
    Abandon,
    Budget,
    Candidate,
    best_scored,
    now,
    validation_noise,
)
from ml.training.sizing import (
    fine_tuning_budget,
    image_crop_pct,
    pixel_side,
)
from ml.training.spec import CHECKPOINT, TrainHooks, TrainingStopped, TrainSpec
from ml.training.text_classifier import POOLED_LAYERS, MeanPooledClassifier

# TrainOutcome lives in outcome.py; the worker imports both names from here.
__all__ = ["TrainOutcome", "run_training"]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _stop_checker(hooks: TrainHooks) -> Callable[[], None]:
    """Before fine-tuning there is no training state: both stop reasons just end the run."""

    def check() -> None:
        reason = hooks.should_stop()
        if reason is not None:
            raise TrainingStopped(reason)

    return check


@dataclass
class _Job:
    """A job's prepared state: data, resolved settings, the model and its cached inputs."""

    spec: TrainSpec
    hooks: TrainHooks
    device: torch.device
    data: JobData
    hp: dict[str, Any]
    plan: Plan
    fitted: Fitted  # what the task learned from the training targets (weights, scale)
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase | None
    preprocessing: dict[str, Any]
    weights_sha256: str
    train_inputs: CachedInputs
    val_inputs: CachedInputs  # train_inputs itself when validation is split off training
    eval_batch: int
    feature_seconds_per_example: float | None = None  # measured by the probe, when not cached

    @property
    def labels(self) -> list[str]:
        return self.fitted.names


def _build_model(
    spec: TrainSpec, labels: list[str], hp: dict[str, Any], stats: InputStats
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase | None, dict[str, Any]]:
    """The model (a linear head per label or target), its tokenizer (text) and the
    preprocessing it expects (for images, the crop suits the images' native size)."""
    # Seeded first: a fresh head (and a random-init test backbone) is then reproducible,
    # which a resumed run relies on to rebuild the same probe.
    torch.manual_seed(spec.seed)
    if spec.backbone.modality == "image":
        backbone, data_config = build_image_model(spec.backbone, len(labels), spec.cache_dir)
        size = hp.get("probe_image_size", hp["image_size"])
        grid = pixel_side(stats, size)
        model = MultiDepthClassifier(backbone, len(labels), POOLED_STAGES, grid)
        crop = image_crop_pct(stats, float(data_config.get("crop_pct", 1.0)), size)
        return model, None, image_preprocessing(data_config | {"crop_pct": crop}, size)
    built, tokenizer = build_text_model(spec.backbone, len(labels), spec.cache_dir)
    # The factory's head classifies [CLS]; ours classifies mean-pooled states (see
    # text_classifier.py), so only the pretrained encoder is kept.
    encoder = built.base_model
    assert isinstance(encoder, PreTrainedModel)
    text_model = MeanPooledClassifier(encoder, len(labels), POOLED_LAYERS)
    # Label names travel with the weights (and into the artifact's hf/config.json).
    text_model.config.id2label = dict(enumerate(labels))
    text_model.config.label2id = {label: i for i, label in enumerate(labels)}
    # Texts longer than the position table would index past it.
    positions = getattr(encoder.config, "max_position_embeddings", None) or hp["max_length"]
    max_length = min(hp["max_length"], tokenizer.model_max_length, positions)
    return text_model, tokenizer, {"max_length": max_length}


def _fingerprint(spec: TrainSpec, hp: dict[str, Any], weights: str) -> str:
    """What must match for a checkpoint to belong to this job."""
    described = {
        "dataset": spec.dataset_dir.name,
        "validation": str(spec.validation_dataset_dir and spec.validation_dataset_dir.name),
        "split": spec.validation_split,
        "backbone": [spec.backbone.id, weights],
        "method": spec.method,
        "hyperparameters": hp,
        "seed": spec.seed,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def _prepare(spec: TrainSpec, hooks: TrainHooks) -> _Job:
    device = pick_device(spec.device)
    configure_threads()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels once
    _seed_everything(spec.seed)
    data = load_job_data(spec, hooks)
    plan = plan_job(
        method=spec.method,
        hyperparameters=spec.hyperparameters,
        backbone=spec.backbone,
        num_examples=len(data.train_set.examples),
        num_validation_examples=len(data.val_set.examples) if data.separate_validation else None,
        validation_split=spec.validation_split,
        stats=data.train_set.inputs,
        device=device.type,
        task_defaults=data.task.hyperparameters,
    )
    hp = dict(plan.hyperparameters)
    hooks.event("info", "resolved hyperparameters", data={"hyperparameters": hp})
    hooks.event(
        "info",
        f"plan: {', '.join(c['name'] for c in plan.candidates)}; about "
        f"{plan.estimated_seconds:.0f} s on {plan.device}",
        data={"plan": plan.to_public()},
    )
    fitted = data.task.fit_targets(data.targets[data.train_rows], data.names)
    for message, details in fitted.warnings:
        hooks.event("warn", message, data=details)
    # The loss, the probe and the metrics all see targets in the task's training form
    # (regression: standardised on the training rows).
    shared = data.val_targets is data.targets
    data.targets = fitted.transform(data.targets)
    data.val_targets = data.targets if shared else fitted.transform(data.val_targets)
    with timed_phase(hooks, "model_load", f"loaded backbone {spec.backbone.id}"):
        model, tokenizer, preprocessing = _build_model(
            spec, fitted.names, hp, data.train_set.inputs
        )
        model.to(device)
    if "max_length" in hp and preprocessing["max_length"] < hp["max_length"]:
        hooks.event(
            "warn",
            f"max_length {hp['max_length']} exceeds what the backbone reads; "
            f"using {preprocessing['max_length']}",
        )
        hp["max_length"] = preprocessing["max_length"]
    if device.type == "cuda" and spec.backbone.modality == "image":
        model.to(memory_format=torch.channels_last)
    check = _stop_checker(hooks)
    with timed_phase(hooks, "data_preparation", "prepared the inputs (decoded or tokenized)"):
        train_inputs = prepare_inputs(
            data.train_set, preprocessing, spec.cache_dir, tokenizer, check
        )
        val_inputs = train_inputs
        if data.val_set is not data.train_set:
            val_inputs = prepare_inputs(
                data.val_set, preprocessing, spec.cache_dir, tokenizer, check
            )
    return _Job(
        spec=spec,
        hooks=hooks,
        device=device,
        data=data,
        hp=hp,
        plan=plan,
        fitted=fitted,
        model=model,
        tokenizer=tokenizer,
        preprocessing=preprocessing,
        weights_sha256=weights_sha256(spec.backbone, spec.cache_dir),
        train_inputs=train_inputs,
        val_inputs=val_inputs,
        eval_batch=inference_batch_size(spec.backbone.modality, device, hp["batch_size"]),
    )


def _feature_file(job: _Job, dataset: StoredDataset, backbone_key: str) -> Path:
    """Where the features of `dataset` by this backbone (`backbone_key`: its fingerprint, a
    hash of every weight, so computed once per pass) at this preprocessing are cached. The
    classifier's input width is in the key: it changes with the pooled layers."""
    width = classifier_layer(job.model).in_features
    return features_path(
        job.spec.cache_dir, dataset.path.name, f"{backbone_key}:{width}", job.preprocessing
    )


def _features(
    job: _Job, dataset: StoredDataset, inputs: CachedInputs, backbone_key: str
) -> torch.Tensor:
    """Frozen features of every example (from the cache when another job computed them)."""
    path = _feature_file(job, dataset, backbone_key)
    if not path.is_file():
        job.hooks.event("info", f"computing frozen features for {len(dataset.examples)} examples")
    batches = -(-len(dataset.examples) // job.eval_batch)
    epochs = job.hp.get("epochs", 1)
    tick = preparation_ticker(job.hooks, _stop_checker(job.hooks), batches, epochs)
    return extract_features(job.model, inputs, job.eval_batch, path, tick)


@dataclass
class _Probe:
    """A cross-fitted linear head and the rows its out-of-fold outputs are in."""

    fit: ProbeFit
    targets: torch.Tensor  # of every example, in the order of fit.oof
    val_rows: np.ndarray  # the validation rows within that order
    val_summary: dict[str, float]  # out of fold, on the validation rows: what auto must beat
    summary: dict[str, float]  # out of fold, on every example


def _cross_fit(
    job: _Job, features: torch.Tensor, val_features: torch.Tensor | None, scale: bool = True
) -> _Probe:
    """The task's cross-fitted linear head on these features of the training dataset (and of
    the separate validation dataset, when there is one)."""
    data, device = job.data, job.device
    if val_features is not None:
        features = torch.cat([features[data.train_rows], val_features[data.val_rows]])
        targets = torch.cat([data.targets[data.train_rows], data.val_targets[data.val_rows]])
        train_rows = np.arange(len(data.train_rows))
        val_rows = np.arange(len(data.train_rows), len(features))
    else:
        targets, train_rows, val_rows = data.targets, data.train_rows, data.val_rows
    fit = data.task.probe(
        features.to(device),
        targets.to(device),
        train_rows,
        job.fitted,
        seed=job.spec.seed,
        scale=scale,
    )
    oof = fit.oof.float().cpu()
    val_summary = data.task.summarize(oof[val_rows], targets[val_rows], job.fitted)
    summary = data.task.summarize(oof, targets, job.fitted)
    return _Probe(fit, targets, val_rows, val_summary, summary)


def _linear_probe(job: _Job) -> _Probe:
    """Cross-fit the head on frozen features of every example, and put the head fitted on the
    training rows into the model (where fine-tuning starts)."""
    data = job.data
    with timed_phase(job.hooks, "features", "frozen features ready"):
        key = backbone_fingerprint(job.model)
        started, cached = now(), _feature_file(job, data.train_set, key).is_file()
        features = _features(job, data.train_set, job.train_inputs, key)
        if not cached:
            job.feature_seconds_per_example = (now() - started) / max(1, len(features))
        val_features = None
        if data.separate_validation:
            val_features = _features(job, data.val_set, job.val_inputs, key)
    mark_first_step(job.hooks)
    probe = _cross_fit(job, features, val_features)
    fit = probe.fit
    if fit.details.get("class_weights") == "none" and job.fitted.class_weights is not None:
        # The probe chose by cross-validation; fine-tuning from its head keeps its loss.
        job.fitted.class_weights = None
        job.hooks.event(
            "info",
            "the linear probe scored better out of fold without class weights; "
            "the labels are not weighted",
            data={"class_weight_scores": fit.details["class_weight_scores"]},
        )
    install_head(job.model, fit.train_weight, fit.train_bias)
    headline = data.task.headline
    job.hooks.event(
        "info",
        f"linear probe: {headline} {probe.summary[headline]:.4f} "
        f"({fit.folds}-fold out-of-fold on {len(fit.oof)} examples)",
        type="metrics",
        data={
            "epoch": 0, "method": "linear_probe", "l2": fit.l2, "folds": fit.folds,
            **probe.summary,
        },
    )  # fmt: skip
    return probe


@dataclass
class _Classical:
    featurizer: ClassicalFeaturizer
    probe: _Probe
    class_weights: list[float] | None  # what its loss weighed the labels by (its own choice)


def _classical(job: _Job) -> _Classical:
    """The cheap model a practitioner tries first, cross-fitted like the probe on its own
    features (raw downsampled pixels, or TF-IDF)."""
    data = job.data
    featurizer = classical_candidate(
        job.spec.backbone.modality, data.train_set, np.arange(len(data.train_set.examples))
    )
    features = featurizer.features(data.train_set)
    val_features = featurizer.features(data.val_set) if data.separate_validation else None
    probe = _cross_fit(job, features, val_features, scale=featurizer.scale_features)
    unweighted = probe.fit.details.get("class_weights") == "none"
    return _Classical(featurizer, probe, None if unweighted else job.fitted.class_weights)


def _probe_with_tfidf(
    job: _Job, probe: _Probe, classical: _Classical | None
) -> tuple[_Probe, Blend] | None:
    """auto, texts: the probe's and the TF-IDF model's outputs blended, the share chosen on
    the training rows' out-of-fold outputs (ml/training/blend.py), like the probe's L2. None
    when there is no TF-IDF model or the probe alone won there."""
    if classical is None or classical.featurizer.kind != "tfidf":
        return None
    task = job.data.task
    train_rows = np.setdiff1d(np.arange(len(probe.targets)), probe.val_rows)
    blend = choose_blend(
        task, probe.fit, classical.probe.fit, probe.targets, train_rows, job.fitted
    )
    headline = task.headline
    if blend.share == 1.0:
        job.hooks.event(
            "info",
            "linear probe: TF-IDF beside the features did not help out of fold; kept without",
            data={"tfidf_shares": blend.tried},
        )
        return None
    oof, val = blend.fit.oof.float().cpu(), probe.val_rows
    val_summary = task.summarize(oof[val], probe.targets[val], job.fitted)
    summary = task.summarize(oof, probe.targets, job.fitted)
    job.hooks.event(
        "info",
        f"linear probe beside TF-IDF (weighted {blend.describe()}): {headline} "
        f"{summary[headline]:.4f} out of fold",
        type="metrics",
        data={
            "epoch": 0, "method": "linear_probe", "tfidf_share": blend.share,
            "tfidf_shares": blend.tried, **summary,
        },
    )  # fmt: skip
    return _Probe(blend.fit, probe.targets, val, val_summary, summary), blend


def _tfidf_model(job: _Job, featurizer: ClassicalFeaturizer) -> torch.nn.Module:
    """The probe's encoder under a head that also reads the TF-IDF rows."""
    text_model = job.model
    assert isinstance(text_model, MeanPooledClassifier)
    return MeanPooledClassifier(
        text_model.encoder, len(job.labels), text_model.layers, featurizer.num_features
    )


def _timm_model(model: torch.nn.Module) -> torch.nn.Module:
    return model.backbone if isinstance(model, MultiDepthClassifier) else model


def _set_input_size(model: torch.nn.Module, size: int) -> None:
    """A ViT's position embeddings resampled to `size` (timm); CNNs run at any size as they are."""
    resize = getattr(_timm_model(model), "set_input_size", None)
    if callable(resize):
        resize(img_size=size)


def _size_kwargs(model: torch.nn.Module, preprocessing: dict[str, Any]) -> dict[str, Any]:
    """What rebuilding a resized ViT at its served size takes; nothing for other models."""
    if callable(getattr(_timm_model(model), "set_input_size", None)):
        return {"img_size": preprocessing["input_size"][-1]}
    return {}


def _tuning_inputs(job: _Job, probe: _Probe) -> None:
    """Move the job to the fine-tuning input size, with a linear head fitted on the training
    rows at that size (LP-FT starts from it); at the probe's own size, its head."""
    size = job.hp.get("image_size")
    if size is None or size == job.preprocessing["input_size"][-1]:
        install_head(job.model, probe.fit.train_weight, probe.fit.train_bias)
        return
    data, check = job.data, _stop_checker(job.hooks)
    _set_input_size(job.model, size)
    job.preprocessing = image_preprocessing(job.preprocessing, size)
    with timed_phase(job.hooks, "tuning_inputs", f"prepared the inputs at {size} px"):
        job.train_inputs = prepare_inputs(
            data.train_set, job.preprocessing, job.spec.cache_dir, None, check
        )
        job.val_inputs = job.train_inputs
        if data.separate_validation:
            job.val_inputs = prepare_inputs(
                data.val_set, job.preprocessing, job.spec.cache_dir, None, check
            )
        key = backbone_fingerprint(job.model)
        features = _features(job, data.train_set, job.train_inputs, key)
        val_features = (
            _features(job, data.val_set, job.val_inputs, key) if data.separate_validation else None
        )
        head = _cross_fit(job, features, val_features)
    install_head(job.model, head.fit.train_weight, head.fit.train_bias)
    job.hooks.event(
        "info",
        f"fine-tuning at {size} px from a linear head fitted there "
        f"({data.task.headline} {head.val_summary[data.task.headline]:.4f} on validation)",
        data={"image_size": size, **head.val_summary},
    )


def _fine_tune(
    job: _Job,
    resolved: dict[str, Any],
    baseline: Baseline | None,
    budget: Budget | None = None,
    abandon: Abandon | None = None,
) -> FineTuneResult:
    data = job.data
    train_loader = build_loader(
        job.train_inputs,
        data.train_rows,
        data.targets,
        job.hp["batch_size"],
        train=True,
        device=job.device,
        seed=job.spec.seed,
    )
    val_loader = build_loader(
        job.val_inputs,
        data.val_rows,
        data.val_targets,
        job.eval_batch,
        train=False,
        device=job.device,
    )
    return fine_tune(
        job.model,
        train_loader,
        val_loader,
        job.hooks,
        hp=job.hp,
        task=job.data.task,
        fitted=job.fitted,
        baseline=baseline,
        checkpoint_dir=job.spec.work_dir / CHECKPOINT,
        checkpoint_every_seconds=job.spec.checkpoint_every_seconds,
        fingerprint=_fingerprint(job.spec, resolved, job.weights_sha256),
        budget=budget,
        abandon=abandon,
    )


def _described(task: Task, candidate: Candidate) -> str:
    text = f"{candidate.name} {candidate.status}"
    if candidate.validation:
        score = candidate.validation[task.headline]
        text += f" ({task.headline} {score:.4f}, {candidate.seconds:.1f} s)"
    return text


@dataclass
class _Tuning:
    result: FineTuneResult
    probe_weights: dict[str, torch.Tensor]  # the model before tuning: where a kept probe returns


def _fine_tuning_budget(job: _Job, clock: Budget, probe_seconds: float) -> Budget:
    """auto's fine-tuning budget from now: the client's seconds, else what is left of three
    times the probe's measured cost once the job's time so far (loading, the classical model,
    the probe) is spent (ml/training/sizing.py), so that the whole job stays within about
    four times a frozen-features model."""
    if given(job.spec.hyperparameters, "time_budget_seconds"):
        seconds = float(job.hp["time_budget_seconds"])
    else:
        seconds = fine_tuning_budget(probe_seconds, clock.spent())
    job.hp["time_budget_seconds"] = seconds
    job.hooks.event(
        "info",
        f"fine-tuning time budget: {seconds:g} s",
        data={"time_budget_seconds": seconds, "spent_seconds": round(clock.spent(), 2)},
    )
    return Budget(seconds)


def _first_epoch_estimate(job: _Job) -> float | None:
    """Seconds one fine-tuning epoch should take, from the probe's measured feature pass: a
    training step costs about three forward passes, and validation runs twice (the weights
    and their average); images scale with the pixels. None when the features were cached."""
    per_example = job.feature_seconds_per_example
    if per_example is None:
        return None
    if "image_size" in job.hp:
        per_example *= (job.hp["image_size"] / job.preprocessing["input_size"][-1]) ** 2
    return per_example * (3 * len(job.data.train_rows) + 2 * len(job.data.val_rows))


def _search_fine_tuning(
    job: _Job,
    resolved: dict[str, Any],
    probe: _Probe,
    candidates: list[Candidate],
    clock: Budget,
    noise: float,
) -> _Tuning | None:
    """full: fine-tune. auto: fine-tune when the budget leaves time and nothing is perfect
    already, giving up once clearly behind the best candidate so far."""
    method, task = job.spec.method, job.data.task
    if method == "linear_probe":
        return None
    best = best_scored(task, candidates)
    description = (
        f"fine-tuning every weight from a linear head at "
        f"{job.hp.get('image_size', job.hp.get('max_length'))} "
        f"{'px' if 'image_size' in job.hp else 'tokens'}"
    )
    candidate = Candidate("lp_ft", description)
    candidates.append(candidate)
    abandon = budget = None
    if method == "auto":
        probe_seconds = next(c.seconds for c in candidates if c.name == "linear_probe")
        budget = _fine_tuning_budget(job, clock, probe_seconds)
        skip = None
        epoch = _first_epoch_estimate(job)
        if task.perfect(best.validation):
            skip = f"the {best.name} is already perfect on validation"
        elif budget.exhausted():
            skip = f"the time budget ({budget.seconds:g} s) ran out before fine-tuning started"
        elif epoch is not None and epoch > budget.left():
            skip = (
                f"one fine-tuning epoch (about {epoch:.0f} s at the probe's measured speed) "
                f"does not fit in the time budget ({budget.seconds:g} s)"
            )
        if skip is not None:
            candidate.status, candidate.reason = "skipped", skip
            return None
        abandon = Abandon(task, best.validation, noise, best.name.replace("_", " "))
    started = clock.spent()
    probe_weights = cpu_state_dict(job.model)
    _tuning_inputs(job, probe)
    result = _fine_tune(job, resolved, None, budget, abandon)
    candidate.seconds = round(clock.spent() - started, 2)
    candidate.validation = dict(result.best_summary or {})
    if result.abandoned:
        candidate.status, candidate.reason = "abandoned", result.stopped_early or ""
    else:
        candidate.reason = result.stopped_early or (
            f"best validation epoch {result.best_epoch} of {result.epochs_run}"
        )
    return _Tuning(result, probe_weights)


# The trainer's own model wrappers: each says what its head reads, for the artifact.
_DESCRIBED_HEADS = (MeanPooledClassifier, MultiDepthClassifier)


def run_training(spec: TrainSpec, hooks: TrainHooks) -> TrainOutcome:
    """Train spec's job to the end, or raise TrainingStopped when hooks ask it to stop.

    A checkpoint left in spec.work_dir by an earlier (preempted) attempt is resumed.
    """
    clock = Budget(None)  # the job's start, for the candidates' costs
    job = _prepare(spec, hooks)
    task = job.data.task
    candidates: list[Candidate] = []
    classical: _Classical | None = None
    if spec.method == "auto":
        started = clock.spent()
        classical = _classical(job)
        candidates.append(
            Candidate(
                "classical",
                classical.featurizer.description,
                classical.probe.val_summary,
                round(clock.spent() - started, 2),
            )
        )
    started = clock.spent()
    probe = _linear_probe(job)
    # auto, texts: the probe may read TF-IDF beside its features; `probe` stays the head
    # fine-tuning starts from, `scored` is the probe auto compares and serves.
    tfidf = _probe_with_tfidf(job, probe, classical)
    scored = probe if tfidf is None else tfidf[0]
    description = f"a linear model on frozen {spec.backbone.id} features"
    if tfidf is not None:
        description += (
            f" beside TF-IDF (outputs weighted {tfidf[1].describe()}, the share chosen out of "
            "fold on the training rows)"
        )
    candidates.append(
        Candidate(
            "linear_probe",
            description,
            scored.val_summary,
            # The backbone's loading and the first decode belong to the probe's cost.
            round(clock.spent(), 2) if classical is None else round(clock.spent() - started, 2),
        )
    )
    resolved = job.hp | {"probe_l2": probe.fit.l2}
    if tfidf is not None:
        resolved["probe_tfidf_share"] = tfidf[1].share
    probe_preprocessing = dict(job.preprocessing)
    noise = 0.0
    if spec.method == "auto":
        # How far apart two equally good models land on these validation rows.
        oof = scored.fit.oof.float().cpu()
        noise = validation_noise(
            task, oof[scored.val_rows], scored.targets[scored.val_rows], job.fitted, spec.seed
        )
    tuning = _search_fine_tuning(job, resolved, probe, candidates, clock, noise)
    tuned = tuning.result if tuning else None
    for candidate in candidates:
        if candidate.status == "kept":
            candidate.status = "lost"  # until decided
    kept, reason = decide(spec.method, task, candidates, probe.fit.l2, noise)
    kept.status = "kept"
    method = kept.name
    hooks.event(
        "info",
        "candidates: " + "; ".join(_described(task, c) for c in candidates),
        data={"candidates": [c.public() for c in candidates]},
    )
    hooks.event("info", f"kept {method}: {reason}", data={"method": method, "reason": reason})
    model, preprocessing = job.model, job.preprocessing
    library: str | None = None
    files: dict[str, bytes] = {}
    if method == "lp_ft" and tuned is not None and tuned.best_val is not None:
        # The fine-tuned epoch's outputs on validation.
        held_out, truth = tuned.best_val
        evaluated_on = {"split": "validation", "examples": len(truth)}
    else:
        # A kept probe serves the head refitted on every example; its held-out outputs are
        # the out-of-fold ones.
        chosen = scored
        if method == "classical" and classical is not None:
            chosen = classical.probe
            model = classical.featurizer.build_model(len(job.labels))
            preprocessing = classical.featurizer.preprocessing()
            library, files = "classical", classical.featurizer.artifact_files()
        else:
            if tuning is not None:
                if "input_size" in probe_preprocessing:
                    _set_input_size(job.model, probe_preprocessing["input_size"][-1])
                job.model.load_state_dict(tuning.probe_weights)
            preprocessing = probe_preprocessing
            if tfidf is not None and classical is not None:
                model = _tfidf_model(job, classical.featurizer)
                preprocessing = preprocessing | {"tfidf": classical.featurizer.preprocessing()}
                files = classical.featurizer.artifact_files()
        install_head(model, chosen.fit.weight, chosen.fit.bias)
        held_out, truth = chosen.fit.oof.float().cpu(), chosen.targets.cpu()
        evaluated_on = {"split": "out_of_fold", "examples": len(truth), "folds": chosen.fit.folds}
    job.fitted.kept = method
    metrics, task_config = task.final_report(held_out, truth, job.fitted)
    metrics |= {
        "num_train": len(job.data.train_rows),
        "num_val": len(job.data.val_rows),
        "evaluated_on": evaluated_on,
        "linear_probe": scored.val_summary | {"l2": probe.fit.l2, "folds": probe.fit.folds},
        "epochs": tuned.history if tuned else [],
        "candidates": [c.public() for c in candidates],
        "plan": job.plan.to_public(),
    }
    model.eval().to("cpu")
    return TrainOutcome(
        model=model,
        tokenizer=job.tokenizer if library is None else None,
        task=task.name,
        labels=job.labels,
        task_config=task_config,
        metrics=metrics,
        hyperparameters=resolved,
        method=method,
        method_reason=reason,
        class_weights=(
            classical.class_weights
            if method == "classical" and classical is not None
            else job.fitted.class_weights
        ),
        preprocessing=preprocessing,
        backbone_weights_sha256=job.weights_sha256,
        resumed_from_step=tuned.resumed_from_step if tuned else None,
        library=library,
        artifact_files=files,
        model_kwargs=_size_kwargs(model, preprocessing),
        head=model.head_config() if isinstance(model, _DESCRIBED_HEADS) else {},
    )
