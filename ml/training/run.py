"""run_training: one job from stored dataset to a trained, calibrated, measured classifier.

Every method starts with a linear probe on frozen features (cached across jobs). `full` then
fine-tunes everything from the probe's head (LP-FT); `auto` does the same but keeps the probe
unless fine-tuning beats it on validation, so it is never worse than the probe there.
"""

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from ml.backbones.factory import build_image_model, build_text_model, weights_sha256
from ml.backbones.spec import BackboneSpec
from ml.datasets.store import StoredDataset, load_dataset
from ml.device import configure_threads, pick_device
from ml.training.data import CachedInputs, build_loader, prepare_inputs
from ml.training.evaluation import final_report, predict, score, summarize
from ml.training.features import extract_features, features_path
from ml.training.finetune import Baseline, FineTuneResult, cpu_state_dict, fine_tune
from ml.training.hparams import resolve_hyperparameters
from ml.training.images import image_preprocessing
from ml.training.model import backbone_fingerprint, inference_batch_size
from ml.training.probe import ProbeFit, fit_probe, install_head
from ml.training.spec import TrainHooks, TrainingStopped, TrainSpec
from ml.training.split import stratified_split, validation_fraction
from ml.training.targets import class_weights, encode_targets, label_matrix

_TASK_OF = {"image": "image_classification", "text": "text_classification"}
# Fewer validation examples than this (or than two per label) make selection a coin toss.
_SMALL_VALIDATION = 10


@dataclass
class TrainOutcome:
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase | None
    labels: list[str]
    multilabel: bool
    thresholds: list[float] | None  # multi-label: predict a label when its probability >= this
    temperature: float  # divide logits by this before softmax / sigmoid
    metrics: dict[str, Any]
    hyperparameters: dict[str, Any]  # resolved
    method: str  # what ran and was kept: "linear_probe" | "lp_ft"
    method_reason: str
    class_weights: list[float] | None
    preprocessing: dict[str, Any]
    backbone_weights_sha256: str
    resumed_from_step: int | None

    def artifact_config(self, backbone: BackboneSpec, versions: dict[str, str]) -> dict[str, Any]:
        """config.json of the model artifact (docs/architecture.md)."""
        described: dict[str, Any] = {
            "id": backbone.id,
            "arch": backbone.arch,
            "weights_sha256": self.backbone_weights_sha256,
        }
        if backbone.library == "timm":
            # What load_artifact passes to timm.create_model besides arch and num_classes: the
            # factory builds random backbones with these, pretrained ones with none.
            random_init = backbone.source == "random"
            described["kwargs"] = dict(backbone.options.get("kwargs", {})) if random_init else {}
        return {
            "format": "hone.model/1",
            "task": _TASK_OF[backbone.modality],
            "modality": backbone.modality,
            "library": backbone.library,
            "backbone": described,
            "labels": self.labels,
            "multilabel": self.multilabel,
            "thresholds": self.thresholds,
            "temperature": self.temperature,
            "preprocessing": self.preprocessing,
            "method": self.method,
            "method_reason": self.method_reason,
            "hyperparameters": self.hyperparameters,
            "runtime": "torch",
            "versions": versions,
        }


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


def _build_model(
    spec: TrainSpec, labels: list[str], multilabel: bool, hp: dict[str, Any]
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase | None, dict[str, Any]]:
    """The classifier, its tokenizer (text) and the preprocessing it expects."""
    # Seeded first: a fresh head (and a random-init test backbone) is then reproducible,
    # which a resumed run relies on to rebuild the same probe.
    torch.manual_seed(spec.seed)
    if spec.backbone.modality == "image":
        model, data_config = build_image_model(spec.backbone, len(labels), spec.cache_dir)
        return model, None, image_preprocessing(data_config, hp["image_size"])
    text_model, tokenizer = build_text_model(
        spec.backbone, len(labels), spec.cache_dir, multilabel=multilabel
    )
    # Label names travel with the weights (and into the artifact's hf/config.json).
    text_model.config.id2label = dict(enumerate(labels))
    text_model.config.label2id = {label: i for i, label in enumerate(labels)}
    return text_model, tokenizer, {"max_length": hp["max_length"]}


@dataclass
class _Split:
    """The examples a job trains and validates on, as rows into cached inputs."""

    train_set: StoredDataset
    val_set: StoredDataset  # the training set itself unless a validation dataset was given
    targets: torch.Tensor
    val_targets: torch.Tensor
    train_rows: np.ndarray
    val_rows: np.ndarray


def _split(spec: TrainSpec, hooks: TrainHooks) -> _Split:
    train_set = load_dataset(spec.dataset_dir)
    if train_set.task != _TASK_OF[spec.backbone.modality]:
        raise ValueError(f"backbone {spec.backbone.id!r} cannot learn a {train_set.task} task")
    labels, multilabel = train_set.labels, train_set.multilabel
    targets = encode_targets(train_set.examples, labels, multilabel)
    if spec.validation_dataset_dir is not None:
        val_set = load_dataset(spec.validation_dataset_dir)
        if val_set.task != train_set.task or val_set.multilabel != multilabel:
            raise ValueError("the validation dataset is not of the training dataset's kind")
        val_targets = encode_targets(val_set.examples, labels, multilabel)
        split = _Split(
            train_set, val_set, targets, val_targets,
            np.arange(len(targets)), np.arange(len(val_targets)),
        )  # fmt: skip
    else:
        fraction = validation_fraction(len(targets), spec.validation_split)
        rows = stratified_split(label_matrix(targets, len(labels)), fraction, spec.seed)
        split = _Split(train_set, train_set, targets, targets, *rows)
    if len(split.val_rows) < max(_SMALL_VALIDATION, 2 * len(labels)):
        hooks.event(
            "warn",
            f"the validation set has only {len(split.val_rows)} examples: its metrics are noisy",
            data={"num_val": len(split.val_rows)},
        )
    return split


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


def _features(
    model: torch.nn.Module,
    dataset: StoredDataset,
    inputs: CachedInputs,
    preprocessing: dict[str, Any],
    spec: TrainSpec,
    batch_size: int,
    hooks: TrainHooks,
) -> torch.Tensor:
    path = features_path(
        spec.cache_dir, dataset.path.name, backbone_fingerprint(model), preprocessing
    )
    if not path.is_file():
        hooks.event("info", f"computing frozen features for {len(dataset.examples)} examples")
    return extract_features(model, inputs, batch_size, path, _stop_checker(hooks))


def _choose(
    spec: TrainSpec,
    model: torch.nn.Module,
    probe: ProbeFit,
    probe_summary: dict[str, float],
    tune: Callable[[Baseline | None], FineTuneResult],
) -> tuple[str, str, FineTuneResult | None]:
    """(method kept, why, the fine-tuning run if there was one)."""
    if spec.method == "linear_probe":
        return (
            "linear_probe",
            f"linear_probe was requested (L2 {probe.l2:g} chosen on validation)",
            None,
        )
    probe_f1 = probe_summary["val_macro_f1"]
    if spec.method == "auto" and probe_f1 >= 1.0:
        reason = "the linear probe is already perfect on validation (macro-F1 1.0)"
        return "linear_probe", reason, None
    baseline = Baseline(probe_summary, cpu_state_dict(model)) if spec.method == "auto" else None
    tuned = tune(baseline)
    if spec.method == "full":
        reason = (
            "full was requested: fine-tuned every weight from the linear probe's head (LP-FT); "
            f"best validation epoch {tuned.best_epoch} of {tuned.epochs_run}"
        )
        return "lp_ft", reason, tuned
    if tuned.best_epoch > 0 and tuned.best_summary is not None:
        reason = (
            "fine-tuning from the linear probe's head improved validation macro-F1 from "
            f"{probe_f1:.4f} to {tuned.best_summary['val_macro_f1']:.4f} (epoch {tuned.best_epoch})"
        )
        return "lp_ft", reason, tuned
    best_tuned = max((h["val_macro_f1"] for h in tuned.history), default=float("nan"))
    reason = (
        f"fine-tuning did not beat the linear probe on validation (macro-F1 {probe_f1:.4f}, "
        f"fine-tuned at best {best_tuned:.4f} over {tuned.epochs_run} epochs)"
    )
    return "linear_probe", reason, tuned


def run_training(spec: TrainSpec, hooks: TrainHooks) -> TrainOutcome:
    """Train spec's job to the end, or raise TrainingStopped when hooks ask it to stop.

    A checkpoint left in spec.work_dir by an earlier (preempted) attempt is resumed.
    """
    device = pick_device(spec.device)
    configure_threads()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels once
    _seed_everything(spec.seed)
    check = _stop_checker(hooks)

    data = _split(spec, hooks)
    labels, multilabel = list(data.train_set.labels), data.train_set.multilabel
    hp = resolve_hyperparameters(
        spec.hyperparameters,
        method=spec.method,
        num_train=len(data.train_rows),
        backbone=spec.backbone,
        device=device.type,
    )
    weights = class_weights(data.targets[data.train_rows], len(labels))
    if weights is not None:
        hooks.event(
            "warn",
            "labels are imbalanced: the loss weighs each label by its inverse frequency",
            data={"class_weights": dict(zip(labels, weights, strict=True))},
        )

    model, tokenizer, preprocessing = _build_model(spec, labels, multilabel, hp)
    model.to(device)
    if device.type == "cuda" and spec.backbone.modality == "image":
        model.to(memory_format=torch.channels_last)
    weights_sha = weights_sha256(spec.backbone, spec.cache_dir)
    train_inputs = prepare_inputs(data.train_set, preprocessing, spec.cache_dir, tokenizer, check)
    val_inputs = train_inputs
    if data.val_set is not data.train_set:
        val_inputs = prepare_inputs(data.val_set, preprocessing, spec.cache_dir, tokenizer, check)

    eval_batch = inference_batch_size(spec.backbone.modality, device, hp["batch_size"])
    features = _features(
        model, data.train_set, train_inputs, preprocessing, spec, eval_batch, hooks
    )
    val_features = features
    if data.val_set is not data.train_set:
        val_features = _features(
            model, data.val_set, val_inputs, preprocessing, spec, eval_batch, hooks
        )
    val_truth = data.val_targets[data.val_rows]
    probe = fit_probe(
        features[data.train_rows].to(device),
        data.targets[data.train_rows].to(device),
        val_features[data.val_rows].to(device),
        val_truth.to(device),
        num_labels=len(labels),
        multilabel=multilabel,
        class_weights=weights,
        score=lambda logits, truth: score(logits.cpu(), truth.cpu(), multilabel),
    )
    install_head(model, probe)
    probe_logits = probe.val_logits.float().cpu()
    probe_summary = summarize(probe_logits, val_truth, multilabel)
    hooks.event(
        "info",
        f"linear probe: val_macro_f1 {probe_summary['val_macro_f1']:.4f}",
        type="metrics",
        data={"epoch": 0, "method": "linear_probe", "l2": probe.l2, **probe_summary},
    )
    resolved = hp | {"probe_l2": probe.l2}
    val_loader = build_loader(
        val_inputs, data.val_rows, data.val_targets, eval_batch, train=False, device=device
    )

    def tune(baseline: Baseline | None) -> FineTuneResult:
        train_loader = build_loader(
            train_inputs, data.train_rows, data.targets, hp["batch_size"],
            train=True, device=device, seed=spec.seed,
        )  # fmt: skip
        return fine_tune(
            model, train_loader, val_loader, hooks,
            hp=hp, multilabel=multilabel, class_weights=weights, baseline=baseline,
            checkpoint_dir=spec.work_dir / "checkpoint",
            checkpoint_every_seconds=spec.checkpoint_every_seconds,
            fingerprint=_fingerprint(spec, resolved, weights_sha),
        )  # fmt: skip

    method, reason, tuned = _choose(spec, model, probe, probe_summary, tune)
    hooks.event("info", f"kept {method}: {reason}", data={"method": method, "reason": reason})
    # The kept model's own validation logits: the probe's (the model's head is the probe) or
    # those of the fine-tuned epoch that was kept.
    if method == "linear_probe" or tuned is None or tuned.best_val is None:
        val_logits = probe_logits
    else:
        val_logits, val_truth = tuned.best_val
    metrics, temperature, thresholds = final_report(val_logits, val_truth, labels, multilabel)
    metrics |= {
        "num_train": len(data.train_rows),
        "num_val": len(data.val_rows),
        "linear_probe": probe_summary,
        "epochs": tuned.history if tuned else [],
    }
    model.eval().to("cpu")
    return TrainOutcome(
        model=model,
        tokenizer=tokenizer,
        labels=labels,
        multilabel=multilabel,
        thresholds=thresholds,
        temperature=temperature,
        metrics=metrics,
        hyperparameters=resolved,
        method=method,
        method_reason=reason,
        class_weights=weights,
        preprocessing=preprocessing,
        backbone_weights_sha256=weights_sha,
        resumed_from_step=tuned.resumed_from_step if tuned else None,
    )
