# Shared by the e2e cluster scripts (sourced, not run). Versions are pinned here and in the
# devenv's wrapper go.mod (Kubernetes); every cache key hashes the inputs it is built from.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/../.." && pwd)"
CACHE_ROOT="${SCIM_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scim-kube}"
E2E_CACHE="$CACHE_ROOT/e2e"

KIND_VERSION="v0.33.0"          # the docker shim depends on this exact version's `docker run` arguments
COREDNS_VERSION="v1.13.1"       # the tag kubeadm 1.35 expects
PAUSE_TAG="3.10.1"              # ditto
ETCD_IMAGE_TAG="3.6.6-0"        # ditto (the etcd built by the devenv is v3.6.5)
K8S_VERSION="$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$REPO_ROOT/devenv/go/kubernetes/go.mod")"
DEBIAN_SUITE="bookworm"         # python3 is 3.11 there

log() { printf '[e2e %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Hash of files and strings: the cache key of what is built from them.
inputs_hash() {
  { for f in "$@"; do if [[ -f $f ]]; then cat "$f"; else printf '%s\n' "$f"; fi; done; } \
    | sha256sum | cut -c1-16
}

# The Debian mirror apt is configured with (debootstrap uses the same one).
debian_mirror() {
  local uri
  uri="$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
         | grep -v security | head -n1 | awk '{print $2}')"
  echo "${uri:-http://deb.debian.org/debian}"
}

# Serialise builds of one cache entry across processes.
with_lock() {
  local name="$1"; shift
  mkdir -p "$E2E_CACHE"
  (flock 9; "$@") 9>"$E2E_CACHE/.$name.lock"
}

# A debootstrap minbase root with extra packages, cached as a tarball keyed on its inputs.
# Prints the tarball's path.
rootfs_tar() {  # comma-separated packages
  local packages="$1" mirror; mirror="$(debian_mirror)"
  local tar; tar="$E2E_CACHE/rootfs-$DEBIAN_SUITE-$(inputs_hash "$packages" "$mirror" "$DEBIAN_SUITE").tar"
  _rootfs_build() {
    [[ -f $tar ]] && return 0
    local dir; dir="$(mktemp -d "$E2E_CACHE/rootfs-XXXX")"
    log "debootstrap $DEBIAN_SUITE + $packages ($mirror, ~1-2 min)"
    if ! debootstrap --variant=minbase --include="$packages" "$DEBIAN_SUITE" "$dir" "$mirror" >"$dir.log" 2>&1; then
      tail -20 "$dir.log" >&2; rm -rf "$dir"; return 1
    fi
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir.log"
    tar -C "$dir" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$dir"
  }
  with_lock "rootfs-$(inputs_hash "$packages")" _rootfs_build
  echo "$tar"
}
