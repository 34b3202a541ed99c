import json
from pathlib import Path
from typing import Any

import pytest

from ml.backbones import testing
from ml.backbones.catalog import builtin_catalog, load_catalog
from ml.backbones.spec import BackboneSpec, spec_to_public

HUB_IDS = {
    "resnet50",
    "convnext_tiny",
    "vit_base_patch16_224",
    "efficientnet_b0",
    "bert-base-uncased",
    "distilbert-base-uncased",
    "deberta-v3-base",
}


def _write(path: Path, entries: Any) -> Path:
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def _entry(**changes: Any) -> dict[str, Any]:
    entry = dict(testing.test_catalog_entries()[0], id="mine")
    entry.update(changes)
    return entry


def test_builtin_catalog_holds_offline_and_hub_backbones_but_no_random_ones() -> None:
    specs = {spec.id: spec for spec in builtin_catalog()}
    assert set(specs) == HUB_IDS | {"efficientnet_lite0", "minilm_l6"}
    assert all(spec.source != "random" for spec in specs.values())
    lite0, minilm = specs["efficientnet_lite0"], specs["minilm_l6"]
    assert (lite0.arch, lite0.source, lite0.input_size) == ("tf_efficientnet_lite0", "package", 224)
    assert (minilm.library, minilm.source, minilm.max_length) == ("transformers", "package", 128)
    for spec in specs.values():
        assert spec.num_params > 1_000_000
        assert (
            (spec.input_size or 0) > 0 if spec.modality == "image" else (spec.max_length or 0) > 0
        )
        if spec.source == "hub":
            assert spec.location and "/" in spec.location


def test_user_file_adds_and_replaces_entries(tmp_path: Path) -> None:
    replacement = dict(
        testing.test_catalog_entries()[1], id="minilm_l6", description="my own MiniLM"
    )
    first = _write(tmp_path / "a.json", [_entry(), replacement])
    second = _write(tmp_path / "b.json", [_entry(description="from the later file")])

    catalog = load_catalog([first, second])

    assert catalog["minilm_l6"].source == "random"
    assert catalog["minilm_l6"].description == "my own MiniLM"
    assert catalog["mine"].description == "from the later file"
    assert catalog["resnet50"] == {spec.id: spec for spec in builtin_catalog()}["resnet50"]


def test_relative_local_location_is_relative_to_its_file(tmp_path: Path) -> None:
    entry = _entry(source="local", location="weights/model.safetensors", options={})
    catalog = load_catalog([_write(tmp_path / "c.json", [entry])])
    assert catalog["mine"].location == str(tmp_path / "weights/model.safetensors")


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (_entry(library="transformers"), "image backbones are built with timm"),
        (_entry(colour="blue"), "unknown field(s) ['colour']"),
        (_entry(num_params="many"), "num_params must be an integer"),
        (_entry(input_size=None), "input_size must be an integer >= 1"),
        (_entry(max_length=12), "max_length is not used by image"),
        (_entry(source="hub", location=None), "a hub backbone needs a location"),
        (_entry(source="package", location="requests"), "unknown package"),
        (_entry(source="cloud"), "source must be one of"),
        (_entry(id="../etc"), "id must match"),
        (_entry(id="org/name"), "id must match"),
        ({"id": "mine"}, "missing field(s)"),
        ("resnet50", "an entry must be a JSON object"),
    ],
)
def test_invalid_entry_names_file_and_entry(tmp_path: Path, entry: Any, problem: str) -> None:
    path = _write(tmp_path / "bad.json", [testing.test_catalog_entries()[1], entry])
    with pytest.raises(ValueError) as raised:
        load_catalog([path])
    message = str(raised.value)
    assert message.startswith(f"{path}: entry 1")
    assert problem in message
    if isinstance(entry, dict):
        assert repr(entry["id"]) in message


def test_random_text_entry_needs_a_tokenizer(tmp_path: Path) -> None:
    text = testing.test_catalog_entries()[1]
    entry = dict(text, options={"config": text["options"]["config"]})
    with pytest.raises(ValueError, match="tokenizer_package or tokenizer_dir"):
        load_catalog([_write(tmp_path / "bad.json", [entry])])


@pytest.mark.parametrize(
    ("content", "problem"),
    [("{not json", "not valid JSON"), ('{"id": "x"}', "must be a JSON list")],
)
def test_malformed_file_is_named(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=problem) as raised:
        load_catalog([path])
    assert str(raised.value).startswith(str(path))


def test_duplicate_id_in_one_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "dup.json", [_entry(), _entry()])
    with pytest.raises(ValueError, match=r"entry 1 .*appears twice"):
        load_catalog([path])


def test_missing_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load_catalog([tmp_path / "absent.json"])


def test_public_object_matches_the_api_contract(catalog: dict[str, BackboneSpec]) -> None:
    image = spec_to_public(catalog["efficientnet_lite0"], available=True)
    text = spec_to_public(catalog["bert-base-uncased"], available=False)
    common = {"id", "object", "modality", "library", "num_params", "license", "available"}
    assert common | {"input_size", "source", "description"} == set(image)
    assert common | {"max_length", "source", "description"} == set(text)
    assert image["object"] == "backbone" and image["input_size"] == 224
    assert (text["max_length"], text["available"], text["license"]) == (512, False, "apache-2.0")
    json.dumps([image, text])  # the API serialises it as is


def test_test_entries_load_through_the_user_file_path(catalog: dict[str, BackboneSpec]) -> None:
    tiny_image, tiny_text = catalog[testing.TINY_IMAGE_ID], catalog[testing.TINY_TEXT_ID]
    assert (tiny_image.source, tiny_image.input_size) == ("random", 64)
    assert (tiny_text.source, tiny_text.max_length) == ("random", 32)
    assert tiny_text.options["config"]["hidden_size"] == 32
