#!/usr/bin/env bash
# The one install recipe, shared by the Makefile and both container definitions.
#   containers/install.sh VENV [EXTRAS]          e.g. containers/install.sh .venv test
# Env: MRSR_TORCH_SPEC  torch requirement (default torch==2.13.0: a CPU wheel on the dev
#                       machines; on PyPI's Linux index the same pin is the CUDA build)
#      MRSR_TORCH_INDEX optional extra index for torch (e.g. a CPU-only wheel index)
#      MRSR_EDITABLE=1  install the package in editable mode (development checkouts)
set -euo pipefail
venv=${1:-.venv}
extras=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q ${MRSR_TORCH_INDEX:+--extra-index-url "$MRSR_TORCH_INDEX"} "${MRSR_TORCH_SPEC:-torch==2.13.0}"
target="$here${extras:+[$extras]}"
if [ "${MRSR_EDITABLE:-0}" = 1 ]; then
  "$py" -m pip install -q -e "$target"
else
  "$py" -m pip install -q "$target"
fi
"$venv/bin/mrsr" --version
