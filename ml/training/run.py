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
from functools import partial
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ml.backbones.factory import build_image_model, build_text_model, weights_sha256
from ml.datasets.store import StoredDataset
from ml.device import configure_threads, pick_device
from ml.tasks import Fitted, ProbeFit
from ml.training.choice import choose_method
from ml.training.data import CachedInputs, build_loader, prepare_inputs
from ml.training.examples import JobData, load_job_data
from ml.training.features import extract_features, features_path
from ml.training.finetune import Baseline, FineTuneResult, fine_tune
from ml.training.hparams import resolve_hyperparameters
from ml.training.images import image_preprocessing
from ml.training.model import backbone_fingerprint, inference_batch_size
from ml.training.outcome import TrainOutcome
from ml.training.probe import install_head
from ml.training.reporting import mark_first_step, preparation_ticker, timed_phase
from ml.training.spec import CHECKPOINT, TrainHooks, TrainingStopped, TrainSpec
from ml.training.text_classifier import MeanPooledClassifier

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
    fitted: Fitted  # what the task learned from the training targets (weights, scale)
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase | None
    preprocessing: dict[str, Any]
    weights_sha256: str
    train_inputs: CachedInputs
    val_inputs: CachedInputs  # train_inputs itself when validation is split off training
    eval_batch: int

    @property
    def labels(self) -> list[str]:
        return self.fitted.names


def _build_model(
    spec: TrainSpec, labels: list[str], hp: dict[str, Any]
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase | None, dict[str, Any]]:
    """The model (a linear head per label or target), its tokenizer (text) and the
    preprocessing it expects."""
    # Seeded first: a fresh head (and a random-init test backbone) is then reproducible,
    # which a resumed run relies on to rebuild the same probe.
    torch.manual_seed(spec.seed)
    if spec.backbone.modality == "image":
        model, data_config = build_image_model(spec.backbone, len(labels), spec.cache_dir)
        return model, None, image_preprocessing(data_config, hp["image_size"])
    built, tokenizer = build_text_model(spec.backbone, len(labels), spec.cache_dir)
    # The factory's head classifies [CLS]; ours classifies mean-pooled states (see
    # text_classifier.py), so only the pretrained encoder is kept.
    encoder = built.base_model
    assert isinstance(encoder, PreTrainedModel)
    text_model = MeanPooledClassifier(encoder, len(labels))
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
    hp = resolve_hyperparameters(
        spec.hyperparameters,
        method=spec.method,
        num_train=len(data.train_rows),
        backbone=spec.backbone,
        device=device.type,
        task_defaults=data.task.hyperparameters,
    )
    hooks.event("info", "resolved hyperparameters", data={"hyperparameters": hp})
    fitted = data.task.fit_targets(data.targets[data.train_rows], data.names)
    for message, details in fitted.warnings:
        hooks.event("warn", message, data=details)
    # The loss, the probe and the metrics all see targets in the task's training form
    # (regression: standardised on the training rows).
    shared = data.val_targets is data.targets
    data.targets = fitted.transform(data.targets)
    data.val_targets = data.targets if shared else fitted.transform(data.val_targets)
    with timed_phase(hooks, "model_load", f"loaded backbone {spec.backbone.id}"):
        model, tokenizer, preprocessing = _build_model(spec, fitted.names, hp)
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
        fitted=fitted,
        model=model,
        tokenizer=tokenizer,
        preprocessing=preprocessing,
        weights_sha256=weights_sha256(spec.backbone, spec.cache_dir),
        train_inputs=train_inputs,
        val_inputs=val_inputs,
        eval_batch=inference_batch_size(spec.backbone.modality, device, hp["batch_size"]),
    )


def _features(job: _Job, dataset: StoredDataset, inputs: CachedInputs) -> torch.Tensor:
    """Frozen features of every example (from the cache when another job computed them)."""
    key = backbone_fingerprint(job.model)
    path = features_path(job.spec.cache_dir, dataset.path.name, key, job.preprocessing)
    if not path.is_file():
        job.hooks.event("info", f"computing frozen features for {len(dataset.examples)} examples")
    batches = -(-len(dataset.examples) // job.eval_batch)
    epochs = job.hp.get("epochs", 1)
    tick = preparation_ticker(job.hooks, _stop_checker(job.hooks), batches, epochs)
    return extract_features(job.model, inputs, job.eval_batch, path, tick)


@dataclass
class _Probe:
    """The cross-fitted probe and the rows its out-of-fold outputs are in."""

    fit: ProbeFit
    targets: torch.Tensor  # of every example, in the order of fit.oof
    val_rows: np.ndarray  # the validation rows within that order
    val_summary: dict[str, float]  # out of fold, on the validation rows: what auto must beat


def _linear_probe(job: _Job) -> _Probe:
    """Cross-fit the head on frozen features of every example, and put the head fitted on the
    training rows into the model (where fine-tuning starts)."""
    data, device = job.data, job.device
    with timed_phase(job.hooks, "features", "frozen features ready"):
        features = _features(job, data.train_set, job.train_inputs)
        if data.separate_validation:
            val_features = _features(job, data.val_set, job.val_inputs)
            features = torch.cat([features[data.train_rows], val_features[data.val_rows]])
            targets = torch.cat([data.targets[data.train_rows], data.val_targets[data.val_rows]])
            train_rows = np.arange(len(data.train_rows))
            val_rows = np.arange(len(data.train_rows), len(features))
        else:
            targets, train_rows, val_rows = data.targets, data.train_rows, data.val_rows
    mark_first_step(job.hooks)
    fit = data.task.probe(
        features.to(device), targets.to(device), train_rows, job.fitted, seed=job.spec.seed
    )
    install_head(job.model, fit.train_weight, fit.train_bias)
    oof = fit.oof.float().cpu()
    val_summary = data.task.summarize(oof[val_rows], targets[val_rows], job.fitted)
    summary = data.task.summarize(oof, targets, job.fitted)
    headline = data.task.headline
    job.hooks.event(
        "info",
        f"linear probe: {headline} {summary[headline]:.4f} "
        f"({fit.folds}-fold out-of-fold on {len(oof)} examples)",
        type="metrics",
        data={"epoch": 0, "method": "linear_probe", "l2": fit.l2, "folds": fit.folds, **summary},
    )
    return _Probe(fit, targets, val_rows, val_summary)


def _fine_tune(job: _Job, resolved: dict[str, Any], baseline: Baseline | None) -> FineTuneResult:
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
    )


def run_training(spec: TrainSpec, hooks: TrainHooks) -> TrainOutcome:
    """Train spec's job to the end, or raise TrainingStopped when hooks ask it to stop.

    A checkpoint left in spec.work_dir by an earlier (preempted) attempt is resumed.
    """
    job = _prepare(spec, hooks)
    probe = _linear_probe(job)
    task = job.data.task
    resolved = job.hp | {"probe_l2": probe.fit.l2}
    method, reason, tuned = choose_method(
        spec.method,
        task,
        job.model,
        probe.fit.l2,
        probe.val_summary,
        partial(_fine_tune, job, resolved),
    )
    hooks.event("info", f"kept {method}: {reason}", data={"method": method, "reason": reason})
    # The kept model's held-out outputs: the fine-tuned epoch's on validation, or the probe's
    # out-of-fold outputs on every example (whose head, refitted on all of them, it serves).
    if method == "lp_ft" and tuned is not None and tuned.best_val is not None:
        held_out, truth = tuned.best_val
        evaluated_on = {"split": "validation", "examples": len(truth)}
    else:
        install_head(job.model, probe.fit.weight, probe.fit.bias)
        held_out, truth = probe.fit.oof.float().cpu(), probe.targets.cpu()
        evaluated_on = {"split": "out_of_fold", "examples": len(truth), "folds": probe.fit.folds}
    job.fitted.kept = method
    metrics, task_config = task.final_report(held_out, truth, job.fitted)
    metrics |= {
        "num_train": len(job.data.train_rows),
        "num_val": len(job.data.val_rows),
        "evaluated_on": evaluated_on,
        "linear_probe": probe.val_summary | {"l2": probe.fit.l2, "folds": probe.fit.folds},
        "epochs": tuned.history if tuned else [],
    }
    job.model.eval().to("cpu")
    return TrainOutcome(
        model=job.model,
        tokenizer=job.tokenizer,
        task=task.name,
        labels=job.labels,
        task_config=task_config,
        metrics=metrics,
        hyperparameters=resolved,
        method=method,
        method_reason=reason,
        class_weights=job.fitted.class_weights,
        preprocessing=job.preprocessing,
        backbone_weights_sha256=job.weights_sha256,
        resumed_from_step=tuned.resumed_from_step if tuned else None,
    )
