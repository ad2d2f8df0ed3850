#!/usr/bin/env bash
# The one install recipe, shared by the Makefile and both container definitions.
#   containers/install.sh VENV [EXTRAS]          e.g. containers/install.sh .venv test
# Env: MRSR_TORCH_SPEC  torch requirement (default torch==2.13.0: a CPU wheel on the dev
#                       machines; on PyPI's Linux index the same pin is the CUDA build)
#      MRSR_TORCH_INDEX optional extra index for torch (e.g. a CPU-only wheel index)
#      MRSR_EDITABLE=1  install the package in editable mode (development checkouts)
#      MRSR_LOCK        a hashed lock file (containers/requirements-{cpu,cuda}.lock): every dependency is
#                       installed from it, each file checked against its sha256, then mrsr itself with no
#                       dependencies; MRSR_TORCH_SPEC/MRSR_TORCH_INDEX are then unused (the lock names both)
set -euo pipefail
venv=${1:-.venv}
extras=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
python3 -m venv "$venv"
py="$venv/bin/python"
target="$here${extras:+[$extras]}"
if [ -n "${MRSR_LOCK:-}" ]; then
  [ -z "$extras" ] || { echo "install.sh: a lock file installs no extras ($extras)" >&2; exit 2; }
  # the venv's own pip (no unpinned upgrade); the build backend comes from the lock, not an isolated fetch
  "$py" -m pip install -q --no-cache-dir --require-hashes --only-binary=:all: -r "$MRSR_LOCK"
  "$py" -m pip install -q --no-cache-dir --no-deps --no-build-isolation "$target"
  "$py" -m pip check
  "$venv/bin/mrsr" --version
  exit 0
fi
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q ${MRSR_TORCH_INDEX:+--extra-index-url "$MRSR_TORCH_INDEX"} "${MRSR_TORCH_SPEC:-torch==2.13.0}"
if [ "${MRSR_EDITABLE:-0}" = 1 ]; then
  "$py" -m pip install -q -e "$target"
else
  "$py" -m pip install -q "$target"
fi
"$venv/bin/mrsr" --version
