"""What the engine needs to know about a classifier, for timm and transformers models alike:
how to call it, where its head is, which parameters are backbone, and BatchNorm handling."""

import hashlib
from collections.abc import Iterator

import torch
from transformers import PreTrainedModel

from ml.training.loader import Inputs


def forward_logits(model: torch.nn.Module, inputs: Inputs) -> torch.Tensor:
    if isinstance(inputs, torch.Tensor):
        output: torch.Tensor = model(inputs)
        return output
    logits: torch.Tensor = model(**inputs).logits
    return logits


def classifier_layer(model: torch.nn.Module) -> torch.nn.Linear:
    """The final Linear layer that produces the logits: the linear probe trains this one.

    timm names it through get_classifier(); a transformers head may have several layers
    (RoBERTa: dense -> out_proj), and the one that matters is the last with num_labels outputs.
    """
    if isinstance(model, PreTrainedModel):
        outputs = model.config.num_labels
        layers = [
            module
            for module in model.modules()
            if isinstance(module, torch.nn.Linear) and module.out_features == outputs
        ]
        if layers:
            return layers[-1]
    else:
        layer = model.get_classifier()  # type: ignore[operator]
        if isinstance(layer, torch.nn.Linear):
            return layer
    raise ValueError(f"{type(model).__name__} has no linear classifier layer")


def head_parameter_names(model: torch.nn.Module) -> set[str]:
    """Parameters that are new for this task (the head) rather than pretrained (the backbone)."""
    if isinstance(model, PreTrainedModel):
        prefix = model.base_model_prefix + "."
        return {name for name, _ in model.named_parameters() if not name.startswith(prefix)}
    head = {id(p) for p in classifier_layer(model).parameters()}
    return {name for name, p in model.named_parameters() if id(p) in head}


def backbone_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over every weight except the classifier layer's: what frozen features depend on.

    Hashing the tensors themselves (not the weight files) also covers seeded random-init
    backbones and any conversion the factory applied.
    """
    skip = {id(t) for t in classifier_layer(model).parameters()}
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict(keep_vars=True).items()):
        if id(tensor) in skip:
            continue
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def freeze_batchnorm_statistics(model: torch.nn.Module) -> None:
    """Keep BatchNorm layers on their running statistics (eval mode) while the rest trains.

    Small augmented batches give poor statistics (docs/measurements.md); the affine weights
    still train.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def inference_batch_size(modality: str, device: torch.device, batch_size: int) -> int:
    """Batch size for forward-only passes. docs/measurements.md: on CPU, image throughput falls
    past ~8 per batch and text gains nothing from large ones; a GPU wants them large."""
    if device.type == "cuda":
        return max(batch_size, 128)
    return 8 if modality == "image" else min(batch_size, 32)


def parameters_by_role(
    model: torch.nn.Module,
) -> Iterator[tuple[str, bool, torch.nn.Parameter]]:
    """(name, is_head, parameter) for trainable parameters."""
    head = head_parameter_names(model)
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            yield name, name in head, parameter
