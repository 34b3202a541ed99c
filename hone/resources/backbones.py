"""GET /v1/backbones: the networks a job can fine-tune."""

from __future__ import annotations

from collections.abc import Iterator

from hone._transport import Transport
from hone.pagination import paginate
from hone.types import Backbone


class Backbones:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def list(self) -> Iterator[Backbone]:
        """Every backbone of the server's catalog; `available` says whether its weights can
        be loaded now (a job on an unavailable one is refused)."""
        return paginate(self._transport, "/v1/backbones", Backbone)
