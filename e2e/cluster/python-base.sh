#!/usr/bin/env bash
# Builds (once, cached under a tag keyed on its inputs) a Python 3.11 base image from Debian
# bookworm packages, for the project Dockerfile's BASE_IMAGE build argument where no registry
# (and so no python:3.11-slim) is reachable. The machine's CA bundle goes in so that pip
# inside `docker build --network host` trusts what the host trusts. Prints the image tag.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=python3,python3-venv,python-is-python3,passwd,ca-certificates
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
TAG="scim-kube/python-base:3.11-$DEBIAN_SUITE-$(inputs_hash "${BASH_SOURCE[0]}" "$PACKAGES" "$(debian_mirror)" "$CA_BUNDLE")"

build() {
  docker image inspect "$TAG" >/dev/null 2>&1 && return 0
  local tar dir; tar="$(rootfs_tar "$PACKAGES")"; dir="$(mktemp -d "$E2E_CACHE/python-XXXX")"
  trap 'rm -rf "$dir"' RETURN
  tar -C "$dir" -xf "$tar"
  cp "$CA_BUNDLE" "$dir/etc/ssl/certs/ca-certificates.crt"
  tar -C "$dir" -c . | docker import \
      --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      --change "ENV LANG=C.UTF-8" \
      --change "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt" \
      --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
      --change 'CMD ["python3"]' - "$TAG" >/dev/null
  log "python base image $TAG"
}

with_lock python-base build
echo "$TAG"
