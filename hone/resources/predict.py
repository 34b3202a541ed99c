"""POST /v1/models/{name}/predict: texts as JSON, images as multipart files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hone._transport import Transport
from hone.resources.models import Models, VersionSpec
from hone.types import PredictResponse

ImageInput = str | os.PathLike[str] | bytes


class Predictor:
    """`client.predict(model, texts=[...] | files=[...], ...)`: predictions from a model's
    served version (what the call takes and answers: `__call__`)."""

    def __init__(self, transport: Transport, models: Models) -> None:
        self._transport = transport
        self._models = models

    def __call__(
        self,
        model: str,
        *,
        texts: Sequence[str] | None = None,
        files: Sequence[ImageInput] | None = None,
        version: VersionSpec | None = None,
        alias: str | None = None,
        top_k: int | None = None,
        coverage: float | None = None,
    ) -> PredictResponse:
        """Predict with `model`: `texts` (a text model) or `files`, image paths or bytes (an
        image model). The version is `version` (a number, "latest" or an alias) or `alias`,
        else the model's `production` alias, else its newest ready version. One prediction
        per input, in order: `label`/`score`/`scores` for classifiers, `value`/`interval` for
        regression (`coverage` picks the interval's, default 0.9).

            client.predict("tweets", texts=["love it", "never again"]).predictions[0].label
        """
        if (texts is None) == (files is None):
            raise ValueError("give texts= (a text model) or files= (an image model), one of them")
        if isinstance(texts, str):
            raise TypeError("texts= takes a list of strings, not one string")
        number = None if version is None else self._models.resolve(model, version)
        params = {"version": number, "alias": alias, "coverage": coverage}
        path = f"/v1/models/{quote(model, safe='')}/predict"
        if texts is not None:
            body: dict[str, Any] = {"inputs": list(texts)}
            if top_k is not None:
                body["top_k"] = top_k
            answer = self._transport.json("POST", path, params=params, json=body)
        else:
            assert files is not None
            images = list(files)

            def multipart(resources: ExitStack) -> dict[str, Any]:
                parts = [("file", _part(item, i, resources)) for i, item in enumerate(images)]
                data = {"top_k": str(top_k)} if top_k is not None else {}
                return {"files": parts, "data": data}

            answer = self._transport.json("POST", path, params=params, body=multipart)
        return PredictResponse.model_validate(answer)


def _part(item: ImageInput, index: int, resources: ExitStack) -> tuple[str, Any]:
    if isinstance(item, bytes | bytearray):
        return (f"image-{index}", bytes(item))
    path = Path(item).expanduser()
    return (path.name, resources.enter_context(path.open("rb")))
