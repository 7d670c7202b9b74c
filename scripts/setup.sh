#!/usr/bin/env bash
# Create .venv and install the platform with everything its jobs and tests need.
# Idempotent: a stamp keyed on pyproject.toml + the constraints file skips a repeat.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
VENV="${VENV:-.venv}"
ARCH="$(uname -m)"
PYVER="$("$PY" -c 'import sys; print(f"py{sys.version_info.major}{sys.version_info.minor}")')"
CONSTRAINTS="constraints/${PYVER}-${ARCH}.txt"
[ -f "$CONSTRAINTS" ] || CONSTRAINTS=""

stamp_key="$(cat pyproject.toml ${CONSTRAINTS:+"$CONSTRAINTS"} scripts/setup.sh | sha256sum | cut -c1-16)"
STAMP="$VENV/.installed-$stamp_key"
if [ -f "$STAMP" ]; then
  exit 0
fi

start=$(date +%s)
echo "[setup] creating $VENV with $($PY --version) on $ARCH (constraints: ${CONSTRAINTS:-none})"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --progress-bar off)
"${PIP[@]}" -q --upgrade "pip>=24" "setuptools>=69" wheel

# One resolver call for everything (pysodmetrics pins numpy/opencv: resolve together).
# TORCH_INDEX_URL lets other machines pick a torch build (e.g. a CPU-only index).
extra=()
[ -n "${TORCH_INDEX_URL:-}" ] && extra+=(--extra-index-url "$TORCH_INDEX_URL")
echo "[setup] installing liwi[test] and its dependencies (a few minutes on first run)"
"${PIP[@]}" ${extra[@]+"${extra[@]}"} ${CONSTRAINTS:+-c "$CONSTRAINTS"} -e ".[test]"

# sam2 is source-only; build it against the torch just installed, without CUDA kernels.
if ! "$VENV/bin/python" -c "import sam2" 2>/dev/null; then
  echo "[setup] building sam2 (CPU, no CUDA extension)"
  SAM2_BUILD_CUDA=0 "${PIP[@]}" ${CONSTRAINTS:+-c "$CONSTRAINTS"} --no-build-isolation "sam2==1.1.0"
fi

# pymatting JIT-compiles its numba kernels on first import and caches them beside its
# sources: ~70 s on a 2-core box that would otherwise stall the first ADD run, demo or test.
echo "[setup] compiling pymatting's numba kernels (once)"
"$VENV/bin/python" -c "import pymatting"

rm -f "$VENV"/.installed-*
touch "$STAMP"
echo "[setup] done in $(( $(date +%s) - start ))s"
