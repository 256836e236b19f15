#!/usr/bin/env bash
# Builds, once, every Go binary the kind node needs: kind itself, the Kubernetes commands with
# real version stamps (kubeadm refuses v0.0.0-master), CoreDNS and pause. All from the Go
# module proxy; the result is cached under ~/.cache/scim-kube/e2e/bin-<hash of inputs>.
# Prints the directory.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBE_CMDS=(kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
KEY="$(inputs_hash "${BASH_SOURCE[0]}" "$E2E_DIR/pause/main.go" "$REPO_ROOT/devenv/go/kubernetes/go.mod" \
       "$REPO_ROOT/devenv/go/kubernetes/go.sum" "$KIND_VERSION" "$COREDNS_VERSION" "$(go env GOVERSION)")"
OUT="$E2E_CACHE/bin-$KEY"

build() {
  [[ -f $OUT/.done ]] && return 0
  local tmp; tmp="$(mktemp -d "$E2E_CACHE/build-XXXX")"
  trap 'rm -rf "$tmp"' RETURN
  export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local v=k8s.io/component-base/version
  local ldflags="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  ldflags+=" -X $v.buildDate=1970-01-01T00:00:00Z"
  log "building ${KUBE_CMDS[*]} $K8S_VERSION (warm Go cache: ~1-2 min, cold: ~5 min on 2 cores)"
  cp -r "$REPO_ROOT/devenv/go/kubernetes" "$tmp/mod"   # the wrapper go.mod stays untouched
  (cd "$tmp/mod" && go build -mod=mod -trimpath -ldflags "$ldflags" -o "$tmp/out/" \
      "${KUBE_CMDS[@]/#/k8s.io/kubernetes/cmd/}")
  log "building kind $KIND_VERSION and coredns $COREDNS_VERSION"
  GOBIN="$tmp/out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@$KIND_VERSION"
  GOBIN="$tmp/out" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  (cd "$E2E_DIR/pause" && go build -trimpath -ldflags "-s -w" -o "$tmp/out/pause" main.go)
  # kind's base-image files (entrypoint, scripts) ship inside its module: keep a copy.
  local kind_dir; kind_dir="$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  cp -r "$kind_dir/images/base/files" "$tmp/out/kind-base-files"
  chmod -R u+w "$tmp/out/kind-base-files"
  rm -rf "$OUT"; mv "$tmp/out" "$OUT"; touch "$OUT/.done"
  log "binaries in $OUT"
}

with_lock binaries build
echo "$OUT"
