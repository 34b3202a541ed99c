from pathlib import Path

import pytest

from ml.backbones import testing
from ml.backbones.catalog import load_catalog
from ml.backbones.spec import BackboneSpec


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One per session: the EfficientNet-Lite0 conversion is then done once for all tests.
    return tmp_path_factory.mktemp("hone-cache")


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BackboneSpec]:
    """Built-ins plus the tiny test entries, loaded the way an operator's file is."""
    path = testing.write_test_catalog(tmp_path_factory.mktemp("catalog") / "tiny.json")
    return load_catalog([path])
