#!/usr/bin/env bash
# `make e2e-cluster`: the project on a real node. Builds the image (Dockerfile, BASE_IMAGE
# argument), creates a kind cluster (or uses E2E_KUBECONFIG), loads the image, installs the
# chart with its default values into a namespace enforcing Pod Security `restricted`, waits
# for every Pod, runs `helm test`, then the end-to-end suite in e2e/ with pytest, and deletes
# the cluster (KEEP_CLUSTER=1 keeps it).
#
#   E2E_KUBECONFIG=~/.kube/config  use that cluster instead of creating one; the image must be
#                                  pullable there: E2E_IMAGE=registry/repo:tag, or a kind
#                                  cluster named E2E_KIND_CLUSTER (default: kind) to load it into
#   KEEP_CLUSTER=1                 keep the kind cluster (and release) afterwards
#   E2E_PYTEST_ARGS="-k failover"  extra pytest arguments
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER="${E2E_CLUSTER_NAME:-scim-e2e}"
NAMESPACE="${E2E_NAMESPACE:-scim-kube}"
RELEASE="${E2E_RELEASE:-scim}"
WORK="$REPO_ROOT/run/e2e"
PY="$REPO_ROOT/.venv/bin/python"
mkdir -p "$WORK"
started=$SECONDS
run_started=$(date +%s)
declare -A took=()
step() { took[$1]=$((SECONDS - ${2})); }

"$E2E_DIR/setup-host.sh"
t=$SECONDS; BIN_DIR="$("$E2E_DIR/build-binaries.sh")"; step binaries $t
export PATH="$BIN_DIR:$PATH"
HELM="$("$PY" -c 'from scim_devenv.binaries import ensure; print(ensure(["helm"])["helm"])')"

# The kind CLI goes through the docker shim only where --privileged cannot work (this VM).
kind_() {
  if [[ -z ${NEED_SHIM:-} ]]; then
    NEED_SHIM=0; docker run --rm --privileged --user 0 --entrypoint true "$IMAGE" 2>/dev/null || NEED_SHIM=1
  fi
  if [[ $NEED_SHIM == 1 ]]; then
    local shim; shim="$(mktemp -d)"; ln -s "$E2E_DIR/docker-shim" "$shim/docker"
    PATH="$shim:$PATH" kind "$@"; local rc=$?; rm -rf "$shim"; return $rc
  fi
  kind "$@"
}

IMAGE="${E2E_IMAGE:-}"
if [[ -z $IMAGE ]]; then
  t=$SECONDS
  BASE_IMAGE="${E2E_BASE_IMAGE:-}"
  if [[ -z $BASE_IMAGE ]]; then
    if timeout 20 docker pull -q python:3.11-slim >/dev/null 2>&1; then BASE_IMAGE=python:3.11-slim
    else BASE_IMAGE="$("$E2E_DIR/python-base.sh")"; fi
  fi
  step base-image $t; t=$SECONDS
  # tagged by the base and the content of what the Dockerfile copies (uncommitted edits included)
  IMAGE="scim-kube:e2e-$(cd "$REPO_ROOT" && { echo "$BASE_IMAGE"; find Dockerfile .dockerignore pyproject.toml README.md \
      core api operator devenv -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 | sort -z \
      | xargs -0 sha256sum; } | sha256sum | cut -c1-12)"
  if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "building $IMAGE from the Dockerfile (BASE_IMAGE=$BASE_IMAGE)"
    # --network host: the only way pip reaches PyPI from a build on these machines; the
    # classic builder: BuildKit would fetch its Dockerfile frontend from Docker Hub.
    DOCKER_BUILDKIT=0 docker build -q --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" "$REPO_ROOT" >/dev/null
  fi
  step project-image $t
fi

cleanup() {
  local rc=$?
  if [[ -z ${E2E_KUBECONFIG:-} && ${KEEP_CLUSTER:-0} != 1 ]]; then
    t=$SECONDS; kind_ delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; step delete $t
  elif [[ ${KEEP_CLUSTER:-0} == 1 ]]; then
    log "kept: KUBECONFIG=${KUBECONFIG:-} (kind delete cluster --name $CLUSTER to remove)"
  fi
  local figures="$REPO_ROOT/bench/results/e2e-cluster.json"
  [[ -f $figures && $(stat -c %Y "$figures") -ge $run_started ]] && { log "figures ($figures):"; cat "$figures" >&2; }
  log "timings (s): $(for k in "${!took[@]}"; do printf '%s=%s ' "$k" "${took[$k]}"; done)total=$((SECONDS - started))"
  exit $rc
}
trap cleanup EXIT

if [[ -n ${E2E_KUBECONFIG:-} ]]; then
  export KUBECONFIG="$E2E_KUBECONFIG"
  if [[ -z ${E2E_IMAGE:-} ]]; then
    kind_ load docker-image --name "${E2E_KIND_CLUSTER:-kind}" "$IMAGE"
  fi
else
  t=$SECONDS
  NODE_IMAGE="${E2E_NODE_IMAGE:-}"
  if [[ -z $NODE_IMAGE ]]; then
    official="kindest/node:$K8S_VERSION"
    if timeout 20 docker pull -q "$official" >/dev/null 2>&1; then NODE_IMAGE="$official"
    else NODE_IMAGE="$("$E2E_DIR/node-image.sh")"; fi
  fi
  step node-image $t
  export KUBECONFIG="$WORK/kubeconfig"
  kind_ delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  t=$SECONDS
  log "kind create cluster --name $CLUSTER --image $NODE_IMAGE"
  kind_ create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --config "$E2E_DIR/kind-config.yaml" \
      --kubeconfig "$KUBECONFIG" --wait 3m
  step create-cluster $t
  t=$SECONDS; kind_ load docker-image --name "$CLUSTER" "$IMAGE"; step load-image $t
fi

t=$SECONDS
kubectl get namespace "$NAMESPACE" >/dev/null 2>&1 || kubectl create namespace "$NAMESPACE" >/dev/null
kubectl label --overwrite namespace "$NAMESPACE" pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/enforce-version=latest >/dev/null
# Default values: only the image is this build's.
log "helm install $RELEASE (default values, image $IMAGE) into $NAMESPACE (Pod Security: restricted)"
"$HELM" upgrade --install "$RELEASE" "$REPO_ROOT/charts/scim-kube" --namespace "$NAMESPACE" \
    --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --wait --timeout 5m
kubectl wait --namespace "$NAMESPACE" --for=condition=Ready pod --timeout=180s \
    -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component in (api,operator)"
step helm-install $t
t=$SECONDS; "$HELM" test "$RELEASE" --namespace "$NAMESPACE" --logs --timeout 3m; step helm-test $t

t=$SECONDS
E2E_KUBECONFIG="$KUBECONFIG" E2E_NAMESPACE="$NAMESPACE" E2E_RELEASE="$RELEASE" E2E_IMAGE="$IMAGE" \
E2E_HELM="$HELM" E2E_CHART="$REPO_ROOT/charts/scim-kube" \
  "$REPO_ROOT/.venv/bin/pytest" "$REPO_ROOT/e2e" -p no:cacheprovider ${E2E_PYTEST_ARGS:-}
step suite $t
