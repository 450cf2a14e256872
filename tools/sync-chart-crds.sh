#!/usr/bin/env bash
# Copy the CRDs from the top-level crds/ (the one source) into the chart's crds/ folder.
# tests/component/chart fails when the two differ; run this (or `make chart-crds`) after editing a CRD.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SOURCE="$ROOT/crds"
TARGET="$ROOT/charts/modelplane/crds"

shopt -s nullglob
sources=("$SOURCE"/*.yaml)
if (( ${#sources[@]} == 0 )); then
    echo "sync-chart-crds: no CRDs in $SOURCE" >&2
    exit 1
fi
mkdir -p "$TARGET"
rm -f "$TARGET"/*.yaml
cp "${sources[@]}" "$TARGET/"
echo "synced ${#sources[@]} CRDs into ${TARGET#"$ROOT"/}"
