#!/usr/bin/env bash
# Re-pin both container definitions to the digest that a base tag names today:
#   containers/pin-base.sh [TAG]        (default python:3.11-slim-bookworm; needs docker buildx and a registry)
# The digest is the multi-platform index's, as the registry reports it; review the diff, rebuild, run the self-test.
set -euo pipefail
tag=${1:-python:3.11-slim-bookworm}
here=$(cd "$(dirname "$0")" && pwd)
digest=$(docker buildx imagetools inspect "$tag" | awk '$1 == "Digest:" {print $2; exit}')
[[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "pin-base.sh: no digest for $tag (got '$digest')" >&2; exit 1; }
sed -i -E "s|^FROM python:[^ ]+|FROM $tag@$digest|" "$here/Dockerfile"
sed -i -E "s|^From: python:[^ ]+|From: $tag@$digest|" "$here/mrsr.def"
echo "pinned $tag@$digest"
