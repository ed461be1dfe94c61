#!/bin/sh
# Runs in the build stage of container/Dockerfile.{cpu,gpu}, from /tmp/build, where the
# Dockerfile put the requirements and whatever the build was handed (build/docker-extras/
# VARIANT: a CA bundle ca.crt for pip, a torch wheel).  Only /opt/venv and /opt/project go
# on into the image.
#   venv.sh deps TORCH_INDEX REQUIREMENTS...   /opt/venv with torch first, then the pins
#                                              (their dependencies as constraints.txt says)
#   venv.sh project DIR                        our package from DIR (pyproject.toml), no deps,
#                                              under /opt/project laid out as the venv is
# Two places, so the image copies the big unchanging venv and our small package as two
# layers: a change to our code rebuilds only the second.
set -eu
cd /tmp/build
if [ -f ca.crt ]; then export PIP_CERT=/tmp/build/ca.crt; fi
pip=/opt/venv/bin/pip
mode=$1
shift
case "$mode" in
deps)
    index=$1
    shift
    python3 -m venv /opt/venv
    # torch at the version requirements.txt pins, before the rest, so that install finds it
    # satisfied and never pulls another build of it.
    torch="torch==$(sed -n 's/^torch==//p' requirements.txt)"
    if ls torch-*.whl >/dev/null 2>&1; then
        # Its own dependencies come from PyPI; the pins below check its version.
        "$pip" install ./torch-*.whl
    else
        "$pip" install --index-url "$index" "$torch"
    fi
    for file in "$@"; do set -- "$@" -r "$file"; shift; done
    # What the pins pull in, at the versions the tests ran with (container/constraints.txt);
    # the DLC-equivalent image installs a complete lock instead, with no constraints file.
    if [ -f constraints.txt ]; then set -- -c constraints.txt "$@"; fi
    "$pip" install "$@"
    ;;
project)
    "$pip" install --no-deps --prefix /opt/project "$1"
    ;;
*)
    echo "usage: venv.sh deps TORCH_INDEX REQUIREMENTS... | venv.sh project DIR" >&2
    exit 2
    ;;
esac
