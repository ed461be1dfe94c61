#!/usr/bin/env bash
# The GPU check on a bare machine without network, from the carried device kit.
#
#   bash bench/device/run.sh OUTDIR [bench.gpu_check options]
#
# Installs the kit's wheels (build/device-kit/wheels/serving) and this project into a
# temporary folder with pip (--no-index: nothing is fetched), Infinity's wheels into a
# second one, then runs `python -m bench.gpu_check` from the repository root with that
# folder on PYTHONPATH, under a hard time limit.  The machine's own torch, transformers
# and sentence-transformers are used.  OUTDIR receives the JSON results (rewritten after
# every measurement, so a run cut by the limit still returns what it finished) and
# run.log.  Environment: PYTHON (default python3), DEVICE_KIT (default
# build/device-kit), DEVICE_CHECK_SECONDS (hard limit of the check, default 400: with the
# install and the kill's grace it fits a 480-second call; the check's own budget is 40 s
# less, so its last part ends before the limit does).
set -uo pipefail

out=${1:?usage: bash bench/device/run.sh OUTDIR [bench.gpu_check options]}
shift
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kit=${DEVICE_KIT:-$root/build/device-kit}
python=${PYTHON:-python3}
limit=${DEVICE_CHECK_SECONDS:-400}
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec > >(tee -a "$out/run.log") 2>&1

fail() { echo "device-run: $*"; exit 2; }
[ -d "$kit/wheels/serving" ] || fail "no wheels in $kit/wheels/serving: run \`make device-kit\` and copy build/device-kit here"
work=$(mktemp -d "${TMPDIR:-/tmp}/device-check.XXXXXX") || fail "cannot make a temporary folder"
trap 'rm -rf "$work"' EXIT
site=$work/site
started=$(date +%s)

pip_install() {  # target, then wheels or a project folder
  local target=$1; shift
  "$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
    --disable-pip-version-check --target "$target" "$@"
}

echo "device-run: $("$python" --version 2>&1) at $(command -v "$python"); kit $kit"
pip_install "$site" "$kit"/wheels/serving/*.whl || fail "installing the serving wheels failed"
# The project itself, built from a copy so the working tree stays clean; setuptools
# comes from the kit (pip --no-build-isolation builds with what is importable).
mkdir -p "$work/src"
cp -r "$root/pyproject.toml" "$root/code" "$root/container" "$root/bench" "$root/deploy" \
  "$work/src/" || fail "copying the project failed"
PYTHONPATH=$site pip_install "$site" --no-build-isolation "$work/src" \
  || fail "installing the project failed"
infinity=()
if compgen -G "$kit/wheels/infinity/*.whl" > /dev/null; then
  if pip_install "$work/infinity" "$kit"/wheels/infinity/*.whl; then
    infinity=(--infinity-site "$work/infinity")
  else
    echo "device-run: installing the Infinity wheels failed; the server part runs without it"
  fi
fi
echo "device-run: installed in $(( $(date +%s) - started )) s"

cd "$root" || fail "no repository root"
# The repository root comes first on sys.path (python -m), so bench/ is the tree's;
# reranker and serving come from the install.
# No progress bars: run.log stays one line per event.
PYTHONPATH=$site HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 \
  HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1 \
  timeout -k 15 "$limit" "$python" -m bench.gpu_check --budget-s "$((limit - 40))" \
  --out "$out" --kit "$kit" "${infinity[@]}" "$@"
rc=$?
[ "$rc" -eq 124 ] && echo "device-run: stopped at the ${limit} s limit; the JSON holds every finished part"
echo "device-run: exit $rc after $(( $(date +%s) - started )) s"
exit "$rc"
