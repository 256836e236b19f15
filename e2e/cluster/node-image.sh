#!/usr/bin/env bash
# Builds (once, cached in Docker under a tag keyed on every input) the kind node image from
# Debian packages and the Go-built binaries, because no registry is reachable here: no
# kindest/node, no debian base, no registry.k8s.io images. It is what kind's
# images/base/Dockerfile describes, on a debootstrap root, with the control-plane images
# preloaded (see docs/development.md). Prints the image tag.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN_DIR="$("$E2E_DIR/build-binaries.sh")"
MIRROR="$(debian_mirror)"
NODE_PACKAGES=systemd,systemd-sysv,dbus,containerd,runc,iptables,nftables,conntrack,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,bash,ca-certificates,curl,jq,procps,containernetworking-plugins,e2fsprogs,socat,ebtables
PROXY_PACKAGES=iptables,nftables,conntrack,kmod,iproute2
KEY="$(inputs_hash "${BASH_SOURCE[0]}" "$E2E_DIR/lib.sh" "$E2E_DIR"/node/* "$BIN_DIR" "$MIRROR" "$NODE_PACKAGES" \
       "$PROXY_PACKAGES" "$REPO_ROOT/devenv/go/etcd/go.mod")"
TAG="scim-kube/kind-node:$K8S_VERSION-$KEY"

# A docker image with the given binaries at /usr/local/bin and an entrypoint.
static_image() {  # name tag entrypoint binary-path...
  local name="$1" tag="$2" entry="$3"; shift 3
  local dir; dir="$(mktemp -d)"
  mkdir -p "$dir/usr/local/bin" "$dir/etc" "$dir/tmp"
  for b in "$@"; do cp "$b" "$dir/usr/local/bin/"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$dir/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$dir/etc/group"
  tar -C "$dir" -c . | docker import --change "ENV PATH=/usr/local/bin:/usr/bin:/bin" \
      --change "ENTRYPOINT [\"/usr/local/bin/$entry\"]" - "$name:$tag" >/dev/null
  rm -rf "$dir"
}

build() {
  docker image inspect "$TAG" >/dev/null 2>&1 && return 0
  local work; work="$(mktemp -d "$E2E_CACHE/node-XXXX")"
  trap 'rm -rf "$work"' RETURN
  local node_tar proxy_tar
  node_tar="$(rootfs_tar "$NODE_PACKAGES")" && proxy_tar="$(rootfs_tar "$PROXY_PACKAGES")"
  mkdir -p "$work/root" "$work/proxy"
  tar -C "$work/root" -xf "$node_tar" && tar -C "$work/proxy" -xf "$proxy_tar"

  log "control-plane images ($K8S_VERSION, etcd $ETCD_IMAGE_TAG, coredns $COREDNS_VERSION, pause $PAUSE_TAG)"
  local r=registry.k8s.io
  static_image $r/kube-apiserver "$K8S_VERSION" kube-apiserver "$BIN_DIR/kube-apiserver"
  static_image $r/kube-controller-manager "$K8S_VERSION" kube-controller-manager "$BIN_DIR/kube-controller-manager"
  static_image $r/kube-scheduler "$K8S_VERSION" kube-scheduler "$BIN_DIR/kube-scheduler"
  static_image $r/pause "$PAUSE_TAG" pause "$BIN_DIR/pause"
  static_image $r/coredns/coredns "$COREDNS_VERSION" coredns "$BIN_DIR/coredns"
  # kubeadm's etcd manifest runs `etcd`; the devenv builds it (pinned in devenv/go/etcd).
  local etcd_bin; etcd_bin="$("$REPO_ROOT/.venv/bin/python" -c 'from scim_devenv.binaries import ensure; print(ensure(["etcd"])["etcd"])')"
  static_image $r/etcd "$ETCD_IMAGE_TAG" etcd "$etcd_bin"
  cp "$BIN_DIR/kube-proxy" "$work/proxy/usr/local/bin/"
  tar -C "$work/proxy" -c . | docker import --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      --change 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]' - "$r/kube-proxy:$K8S_VERSION" >/dev/null

  log "assembling the node root"
  local root="$work/root" files="$BIN_DIR/kind-base-files"
  install -m 0755 "$files"/usr/local/bin/* "$root/usr/local/bin/"
  mkdir -p "$root/kind/bin" "$root/kind/images" "$root/kind/manifests" "$root/etc/containerd" \
           "$root/etc/systemd/system/kubelet.service.d" "$root/etc/kubernetes/manifests" \
           "$root/etc/cni/net.d" "$root/opt/cni"
  cp -r "$files/kind/." "$root/kind/"; chmod 0755 "$root"/kind/bin/*
  install -m 0644 "$files"/etc/crictl.yaml "$root/etc/"
  install -m 0644 "$files"/etc/default/* "$root/etc/default/"
  install -m 0644 "$files"/etc/sysctl.d/* "$root/etc/sysctl.d/"
  find "$files/etc/systemd/system" -maxdepth 1 -type f -exec install -m 0644 {} "$root/etc/systemd/system/" \;
  install -m 0644 "$files"/etc/systemd/system/kubelet.service.d/* "$root/etc/systemd/system/kubelet.service.d/"
  install -m 0755 "$E2E_DIR/node/entrypoint" "$root/usr/local/bin/scim-kube-entrypoint"
  install -m 0755 "$E2E_DIR/node/preload-images" "$root/usr/local/bin/"
  install -m 0644 "$E2E_DIR/node/preload-images.service" "$root/etc/systemd/system/"
  sed "s/@PAUSE_TAG@/$PAUSE_TAG/" "$E2E_DIR/node/containerd-config.toml" > "$root/etc/containerd/config.toml"
  install -m 0644 "$E2E_DIR/node/10-ptp.conflist" "$root/etc/cni/net.d/"
  install -m 0644 "$E2E_DIR/node/default-storage.yaml" "$root/kind/manifests/"
  ln -sfn /usr/lib/cni "$root/opt/cni/bin"
  # kind's units expect containerd under /usr/local/bin; Debian puts it in /usr/bin.
  for b in containerd ctr containerd-shim-runc-v2; do ln -sf "/usr/bin/$b" "$root/usr/local/bin/$b"; done
  install -m 0755 "$BIN_DIR/kubelet" "$BIN_DIR/kubeadm" "$BIN_DIR/kubectl" "$root/usr/bin/"
  echo "$K8S_VERSION" > "$root/kind/version"
  for img in kube-apiserver:"$K8S_VERSION" kube-controller-manager:"$K8S_VERSION" kube-scheduler:"$K8S_VERSION" \
             kube-proxy:"$K8S_VERSION" etcd:"$ETCD_IMAGE_TAG" coredns/coredns:"$COREDNS_VERSION" pause:"$PAUSE_TAG"; do
    docker save "$r/$img" -o "$root/kind/images/$(basename "${img%%:*}").tar"
  done
  chroot "$root" /bin/bash -euc '
    ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer | length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" \
      | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json
    find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
          /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
          /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    echo ReadKMsg=no >> /etc/systemd/journald.conf
    systemctl enable -q kubelet.service containerd.service undo-mount-hacks.service preload-images.service
    systemctl mask -q systemd-binfmt.service'
  log "importing the node image $TAG"
  tar -C "$root" -c . | docker import --change 'ENV container=docker' \
      --change 'ENTRYPOINT ["/usr/local/bin/scim-kube-entrypoint", "/sbin/init"]' - "$TAG-rootfs" >/dev/null
  # systemd stops on SIGRTMIN+3; `docker import` cannot set STOPSIGNAL (Docker 20.10).
  printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$TAG-rootfs" | DOCKER_BUILDKIT=0 docker build -q -t "$TAG" - >/dev/null
  docker rmi "$TAG-rootfs" >/dev/null
}

mkdir -p "$E2E_CACHE"
with_lock node-image build
echo "$TAG"
