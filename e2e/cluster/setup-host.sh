#!/usr/bin/env bash
# Host set-up for the kind cluster, idempotent: the Debian packages it needs (installed only
# when missing) and a running dockerd (started here when none answers, left running).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# command -> Debian package
declare -A NEEDED=([dockerd]=docker.io [debootstrap]=debootstrap [flock]=util-linux)
missing=()
for cmd in "${!NEEDED[@]}"; do
  command -v "$cmd" >/dev/null || missing+=("${NEEDED[$cmd]}")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/scim-kube-dockerd.log)"
  # setsid: dockerd outlives this make run and stays usable afterwards.
  setsid dockerd >>/var/log/scim-kube-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/scim-kube-dockerd.log >&2; exit 1; }
fi
log "docker $(docker version --format '{{.Server.Version}}') ready"
