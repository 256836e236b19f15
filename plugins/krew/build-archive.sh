#!/usr/bin/env bash
# Builds the krew release archive of `kubectl scim` and writes its URI and sha256 into
# plugins/krew/scim.yaml (the manifest submitted to krew-index with each release).
#
#   plugins/krew/build-archive.sh [OUT_DIR]      # default: dist/
#
# The archive (kubectl-scim-v<version>.tar.gz, for Linux and macOS) holds the launcher
# plugins/krew/kubectl-scim, the project's wheel (built here, without dependencies) and the
# README. Upload it to the GitHub release v<version>, then commit the updated manifest.
# SOURCE_DATE_EPOCH (default: the last commit's time) makes the archive reproducible.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$repo/dist}" && cd "${1:-$repo/dist}" && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -n 1)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 315532800)}
name=kubectl-scim-v$version
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# the wheel, built exactly as tests/test_packaging.py builds it (no index needed)
"$python" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$stage/wheel" "$repo"
mkdir "$stage/$name"
cp "$stage"/wheel/scim_kube-"$version"-*.whl "$repo/plugins/krew/kubectl-scim" "$repo/README.md" "$stage/$name/"
chmod 0755 "$stage/$name/kubectl-scim"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    -C "$stage/$name" -cf - . | gzip -n -9 > "$out/$name.tar.gz"
sha=$(sha256sum "$out/$name.tar.gz" | cut -d' ' -f1)

manifest=${KREW_MANIFEST:-$repo/plugins/krew/scim.yaml}
uri=https://github.com/optimaite/scim-kube/releases/download/v$version/$name.tar.gz
sed -i -e "s|^\(  version: \).*|\1v$version|" \
       -e "s|^\(    uri: \).*|\1$uri|" \
       -e "s|^\(    sha256: \).*|\1\"$sha\"|" "$manifest"
echo "$out/$name.tar.gz"
echo "sha256 $sha (written to $manifest)"
