# syntax=docker/dockerfile:1
# Two images from one file (versions: docs/images.md):
#   docker build --target operator -t ghcr.io/rzero-dev/rzero-operator:0.1.0 .   # control plane, no torch
#   docker build --target worker   -t ghcr.io/rzero-dev/rzero-worker:0.1.0 .     # phase Jobs, CUDA
# Both run as the unprivileged user 1000 and start `rzero` (ENTRYPOINT as an argument list, no shell).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# ----------------------------------------------------------------------------------------- operator
FROM ${PYTHON_IMAGE} AS operator
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY worker ./worker
# Core dependencies only (pydantic, kopf, kubernetes, boto3...): the operator never imports torch.
RUN pip install . && rm -rf /src
RUN useradd --uid 1000 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin rzero
WORKDIR /tmp
USER 1000:1000
ENTRYPOINT ["rzero"]
CMD ["operator", "--help"]

# ------------------------------------------------------------------------------------------- worker
FROM ${CUDA_IMAGE} AS worker
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    HF_HOME=/cache/huggingface
# The distribution's current python3/gcc (security updates included); a pinned apt version vanishes from the mirror.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev ca-certificates gcc \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY worker ./worker
# One coherent set of pins (DESIGN §2): vLLM 0.31.0 pins torch==2.13.0 and transformers<5.18; TRL 1.16's
# vLLM extra wants vllm<=0.31. torch goes first, by exact version (PyPI's Linux wheel is the CUDA build and
# brings its CUDA libraries), so resolving the rest never swaps it. `.` is this package: its pins are pyproject's.
# The tracker clients (wandb, mlflow) are in the image so that spec.tracking works on a cluster as it does locally.
# hadolint ignore=DL3013
RUN pip install torch==2.13.0 \
 && pip install '.[worker,vllm,wandb,mlflow]' \
 && rm -rf /src
# Ubuntu 24.04 images ship a user `ubuntu` with uid 1000: replace it with ours.
RUN (userdel --remove ubuntu 2>/dev/null || true) \
 && useradd --uid 1000 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin rzero \
 && mkdir -p /cache && chown 1000:1000 /cache
WORKDIR /tmp
USER 1000:1000
ENTRYPOINT ["rzero"]
CMD ["worker", "--help"]
