# syntax=docker/dockerfile:1
# One image for both components; the Helm chart (charts/scim-kube) runs `scim-api` and
# `scim-operator`, the console scripts of pyproject.toml, as user 10001 with a read-only
# root filesystem and an emptyDir at /tmp.
#
#   docker build -t registry.example.com/scim-kube:0.1.0 .
#
# Pin the base by digest in your registry mirror for reproducible builds
# (python:3.11-slim@sha256:...). BASE_IMAGE swaps it for any Python 3.11 image with `python`,
# venv and useradd (`make e2e-cluster` builds one from Debian packages where no registry is
# reachable: e2e/cluster/python-base.sh).
ARG BASE_IMAGE=python:3.11-slim

# --------------------------------------------------------------------------- builder
FROM ${BASE_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what the runtime wheel is built from (pyproject: packages under core/, api/,
# operator/, plugin/; README.md is the package's readme). The dev environment (devenv/, its own
# package) is not part of the image; tests/test_packaging.py builds from these same lines.
COPY pyproject.toml README.md ./
COPY core/ core/
COPY api/ api/
COPY operator/ operator/
COPY plugin/ plugin/

# Builds the project wheel and installs it with its dependencies (binary wheels where they
# exist: the slim image has no compiler), checks the entry points start, then drops pip.
RUN pip install --prefer-binary . \
 && scim-api --help >/dev/null \
 && scim-operator --help >/dev/null \
 && kubectl-scim --help >/dev/null \
 && pip uninstall --yes pip setuptools wheel

# --------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="scim-kube" \
      org.opencontainers.image.description="SCIM 2.0 provisioning of IdP groups into Kubernetes RBAC" \
      org.opencontainers.image.licenses="Apache-2.0"

# The interpreter's own pip/setuptools are not needed at run time either.
RUN python -m pip uninstall --yes pip setuptools wheel 2>/dev/null || true \
 && groupadd --system --gid 10001 scim \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin scim

# The venv lives at the same path as in the builder, so its scripts' shebangs still work.
COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

WORKDIR /tmp
USER 10001:10001
EXPOSE 8080 8081 8082
CMD ["scim-api"]
