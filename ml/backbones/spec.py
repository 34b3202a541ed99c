"""What a backbone is: the catalog entry a job names, how it is parsed, and how the API shows it."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

Library = Literal["timm", "transformers"]
Modality = Literal["image", "text"]
Source = Literal["hub", "local", "package", "random"]

# The one library each modality is built with (see factory.py).
_LIBRARY_OF: dict[str, str] = {"image": "timm", "text": "transformers"}
# Ids travel in URLs, job rows and artifact configs: keep them plain.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class BackboneSpec:
    id: str  # what a job names in "backbone"
    library: Library
    modality: Modality
    arch: str  # timm model name, or transformers model id / dir / model_type (random)
    source: Source
    # hub: repo id ("org/name", optionally "@revision"); local: a directory or file path;
    # package: python package name; random: None
    location: str | None
    num_params: int  # approximate parameter count of the backbone (no head)
    license: str
    input_size: int | None = None  # image: square input resolution
    max_length: int | None = None  # text: default max tokens
    description: str = ""
    # random: {"kwargs": timm create_model kwargs} or {"config": transformers config dict,
    # "tokenizer_package" | "tokenizer_dir": where the tokenizer comes from}
    options: Mapping[str, Any] = field(default_factory=dict)


def spec_to_public(spec: BackboneSpec, available: bool) -> dict[str, Any]:
    """The API's backbone object (GET /v1/backbones)."""
    public: dict[str, Any] = {
        "id": spec.id,
        "object": "backbone",
        "modality": spec.modality,
        "library": spec.library,
        "num_params": spec.num_params,
    }
    if spec.modality == "image":
        public["input_size"] = spec.input_size
    else:
        public["max_length"] = spec.max_length
    public.update(
        license=spec.license,
        available=available,
        source=spec.source,
        description=spec.description,
    )
    return public


def spec_from_dict(entry: object, known_packages: frozenset[str]) -> BackboneSpec:
    """Validate one JSON catalog entry; ValueError says what is wrong with it."""
    if not isinstance(entry, dict):
        raise ValueError("an entry must be a JSON object")
    names = {f.name for f in fields(BackboneSpec)}
    unknown = sorted(set(entry) - names)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}")
    values: dict[str, Any] = {"location": None, "description": "", "options": {}} | entry
    missing = sorted(names - set(values) - {"input_size", "max_length"})
    if missing:
        raise ValueError(f"missing field(s) {missing}")
    for name in ("id", "arch", "license", "description"):
        _expect(isinstance(values[name], str), f"{name} must be a string")
    _expect(bool(_ID_PATTERN.fullmatch(values["id"])), "id must match " + _ID_PATTERN.pattern)
    for name, kind in (("library", Library), ("modality", Modality), ("source", Source)):
        _expect(values[name] in get_args(kind), f"{name} must be one of {list(get_args(kind))}")
    _expect(
        _LIBRARY_OF[values["modality"]] == values["library"],
        f"{values['modality']} backbones are built with {_LIBRARY_OF[values['modality']]}",
    )
    _expect(_is_count(values["num_params"], minimum=0), "num_params must be an integer >= 0")
    size_field = "input_size" if values["modality"] == "image" else "max_length"
    other_field = "max_length" if size_field == "input_size" else "input_size"
    _expect(_is_count(values.get(size_field), minimum=1), f"{size_field} must be an integer >= 1")
    _expect(values.get(other_field) is None, f"{other_field} is not used by {values['modality']}")
    _expect(isinstance(values["options"], dict), "options must be a JSON object")
    _check_source(values, known_packages)
    return BackboneSpec(**values)


def _check_source(values: dict[str, Any], known_packages: frozenset[str]) -> None:
    source, location, options = values["source"], values["location"], values["options"]
    if source == "random":
        _expect(location is None, "location must be null for a random backbone")
        if values["library"] == "timm":
            _expect(isinstance(options.get("kwargs", {}), dict), "options.kwargs must be an object")
            return
        config = options.get("config")
        _expect(
            isinstance(config, dict) and isinstance(config.get("model_type"), str),
            "options.config must be an object with a model_type",
        )
        tokenizer = options.get("tokenizer_package") or options.get("tokenizer_dir")
        _expect(isinstance(tokenizer, str), "options needs a tokenizer_package or tokenizer_dir")
        if "tokenizer_package" in options:
            _expect(options["tokenizer_package"] in known_packages, "unknown tokenizer_package")
        return
    _expect(isinstance(location, str) and location != "", f"a {source} backbone needs a location")
    if source == "package":
        _expect(location in known_packages, f"unknown package; known: {sorted(known_packages)}")


def _is_count(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
