"""The backbones a job may name: built-ins plus the operator's JSON files, and which are usable now.

Nothing here imports torch or builds a model, so listing backbones stays cheap.
"""

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import constants
from huggingface_hub.utils import get_session

from ml.backbones.packages import KNOWN_PACKAGES, package_importable
from ml.backbones.spec import BackboneSpec, spec_from_dict
from ml.backbones.weights import hub_weight_files

_BUILTIN = "catalog.json"
# How long one answer to "is the hub reachable?" is trusted, so a listing probes at most once.
_HUB_PROBE_TTL_S = 60.0
_HUB_PROBE_TIMEOUT_S = 2.0
_hub_probe: dict[str, tuple[float, bool]] = {}


def builtin_catalog() -> list[BackboneSpec]:
    """The backbones shipped with Hone (hub ones need network or a filled HF cache)."""
    text = resources.files("ml.backbones").joinpath(_BUILTIN).read_text(encoding="utf-8")
    return _parse(text, origin=f"ml/backbones/{_BUILTIN}", base_dir=None)


def load_catalog(extra_files: Sequence[Path] = ()) -> dict[str, BackboneSpec]:
    """Built-ins, then each file's entries in order; a later entry replaces one with its id.

    A file holds a JSON list of objects with BackboneSpec's fields. A relative local
    ``location`` is taken relative to the file that names it.
    """
    catalog = {spec.id: spec for spec in builtin_catalog()}
    for path in extra_files:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ValueError(f"{path}: cannot read backbone catalog: {error}") from error
        for spec in _parse(text, origin=str(path), base_dir=Path(path).parent):
            catalog[spec.id] = spec
    return catalog


def is_available(spec: BackboneSpec, cache_dir: Path) -> bool:
    """Whether the weights can be loaded now; cheap, and never touches the network offline.

    ``cache_dir`` is not consulted: package weights are converted on first build, offline.
    """
    if spec.source == "random":
        return True
    if spec.location is None:
        return False
    if spec.source == "package":
        return package_importable(spec.location)
    if spec.source == "local":
        return Path(spec.location).exists()
    if hub_weight_files(spec):
        return True
    return not constants.is_offline_mode() and _hub_reachable()


def _parse(text: str, origin: str, base_dir: Path | None) -> list[BackboneSpec]:
    try:
        entries: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{origin}: not valid JSON: {error}") from error
    if not isinstance(entries, list):
        raise ValueError(f"{origin}: must be a JSON list of backbone objects")
    specs: list[BackboneSpec] = []
    for index, entry in enumerate(entries):
        name = f" ({entry['id']!r})" if isinstance(entry, dict) and "id" in entry else ""
        where = f"{origin}: entry {index}{name}"
        try:
            spec = spec_from_dict(entry, KNOWN_PACKAGES)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        if any(spec.id == seen.id for seen in specs):
            raise ValueError(f"{where}: id {spec.id!r} appears twice in this file")
        if spec.source == "local" and base_dir is not None and spec.location is not None:
            spec = replace(spec, location=str(base_dir / spec.location))
        specs.append(spec)
    return specs


def _hub_reachable() -> bool:
    now = time.monotonic()
    last = _hub_probe.get(constants.ENDPOINT)
    if last is not None and now - last[0] < _HUB_PROBE_TTL_S:
        return last[1]
    try:
        response = get_session().head(constants.ENDPOINT, timeout=_HUB_PROBE_TIMEOUT_S)
        reachable = response.status_code < 500
    except Exception:  # whichever HTTP client the hub library uses: any failure is "no"
        reachable = False
    _hub_probe[constants.ENDPOINT] = (now, reachable)
    return reachable
