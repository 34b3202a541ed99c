"""/v1/models: the registry (models, versions, aliases) and taking a version's files out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hone._transport import Transport
from hone.errors import Conflict, NotFound
from hone.pagination import paginate
from hone.resources.artifacts import download_artifact
from hone.types import Model, ModelDetail, ModelVersion
from hone.uploads import Progress

VersionSpec = int | str  # a number, "3", "latest", or an alias such as "production"


class Models:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def list(self) -> Iterator[Model]:
        """The project's models, newest first."""
        return paginate(self._transport, "/v1/models", Model, cursor=lambda item: item["name"])

    def get(self, name: str) -> ModelDetail:
        """The model, its aliases and a summary of every version."""
        return ModelDetail.model_validate(self._transport.json("GET", _path(name)))

    def version(self, name: str, version: VersionSpec) -> ModelVersion:
        """One version in full: labels, metrics (per label, confusion matrix), manifest.
        `version` is a number, "latest" (the newest ready one) or an alias name.

            v = client.models.version("pets", "latest")
            print(v.metrics["accuracy"], v.metrics["confusion_matrix"])
        """
        number = self.resolve(name, version)
        return ModelVersion.model_validate(
            self._transport.json("GET", f"{_path(name)}/versions/{number}")
        )

    def resolve(self, name: str, version: VersionSpec) -> int:
        """The version number `version` names (a number, "latest", or an alias)."""
        if isinstance(version, int):
            return version
        if version.isdigit():
            return int(version)
        model = self.get(name)
        if version == "latest":
            if model.latest_version is None:
                raise Conflict(
                    409, title="Conflict", detail=f"Model {name!r} has no ready version yet."
                )
            return model.latest_version
        if version in model.aliases:
            return model.aliases[version]
        raise NotFound(
            404, title="Not found", detail=f"Model {name!r} has no version or alias {version!r}."
        )

    def set_alias(self, name: str, alias: str, version: VersionSpec) -> dict[str, Any]:
        """Point `alias` (e.g. "production", which predict serves by default) at a version."""
        body = {"version": self.resolve(name, version)}
        answer: dict[str, Any] = self._transport.json(
            "PUT", f"{_path(name)}/aliases/{quote(alias, safe='')}", json=body
        )
        return answer

    def delete_alias(self, name: str, alias: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._transport.json(
            "DELETE", f"{_path(name)}/aliases/{quote(alias, safe='')}"
        )
        return answer

    def delete_version(self, name: str, version: VersionSpec) -> dict[str, Any]:
        """Delete a version, its files and the aliases that point at it."""
        number = self.resolve(name, version)
        answer: dict[str, Any] = self._transport.json("DELETE", f"{_path(name)}/versions/{number}")
        return answer

    def download(
        self,
        name: str,
        version: VersionSpec,
        dest: str | os.PathLike[str],
        *,
        progress: Progress | None = None,
    ) -> Path:
        """Download a version's files (weights, config, tokenizer, the ONNX file when there
        is one) into the folder `dest`, checking the archive's sha256 and every file's digest
        (IntegrityError if one does not match); return the folder.

            folder = client.models.download("pets", "latest", "./pets-model")
        """
        number = self.resolve(name, version)
        path = f"{_path(name)}/versions/{number}/artifact"
        return download_artifact(self._transport, path, Path(dest), progress)


def _path(name: str) -> str:
    return f"/v1/models/{quote(name, safe='')}"
