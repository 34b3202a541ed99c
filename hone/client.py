"""`hone.Client`: one object holding the connection and the API's resources."""

from __future__ import annotations

from types import TracebackType

from hone import config
from hone._transport import Transport
from hone.resources import Backbones, Datasets, Jobs, Models, Predictor


class Client:
    """A client of one Hone API, for one project (the API key's).

    The URL and key come from the arguments, else `HONE_API_URL` / `HONE_API_KEY`, else what
    `hone login` saved, else http://127.0.0.1:8000 with no key. Requests time out after
    `timeout` seconds; connection errors, 429 and 503 are retried up to `max_retries` times
    (honouring Retry-After). Every error is a `hone.HoneError`: `hone.NotFound`,
    `hone.AuthenticationError`, `hone.APIConnectionError`, ...

    Upload a folder of photos (one sub-folder per label), fine-tune, and predict:

        import hone

        client = hone.Client("http://127.0.0.1:8000", api_key="hone_...")
        ds = client.datasets.upload("photos/", task="image_classification", wait=True)
        job = client.jobs.create(dataset_id=ds.id, backbone="efficientnet_lite0", model_name="pets")
        job = client.jobs.wait(job.id, on_event=lambda e: print(e.message))
        print(job.metrics)
        answer = client.predict("pets", files=["cat.jpg", "dog.png"], top_k=3)
        for p in answer.predictions:
            print(p.label, round(p.score, 3))

    Text models take `texts=["great service", ...]`; `client.models.download("pets",
    "latest", "out/")` takes the weights out; `with hone.Client() as client:` closes the
    connections at the end.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
    ) -> None:
        url, key = config.resolve(base_url, api_key)
        self._transport = Transport(url, key, timeout=timeout, max_retries=max_retries)
        self.datasets = Datasets(self._transport)
        self.backbones = Backbones(self._transport)
        self.jobs = Jobs(self._transport)
        self.models = Models(self._transport)
        # client.predict(model, texts=... | files=..., ...): see Predictor.__call__.
        self.predict = Predictor(self._transport, self.models)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def api_key(self) -> str | None:
        auth = self._transport.http.headers.get("authorization", "")
        return auth.removeprefix("Bearer ") or None

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"hone.Client({self.base_url!r})"
