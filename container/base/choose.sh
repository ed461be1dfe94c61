#!/usr/bin/env bash
# Prints the base image the serving images build on: PUBLIC (python:3.11-slim-bookworm,
# what users have) when it is here or can be pulled, else LOCAL (reranker-base:bookworm),
# built from Debian's packages by build.sh first if it is missing: no registry needed.
#   container/base/choose.sh PUBLIC LOCAL
set -euo pipefail
public=$1 local=$2

if docker image inspect "$public" >/dev/null 2>&1 || docker pull -q "$public" >/dev/null 2>&1; then
    echo "$public"
    exit 0
fi
echo "cannot pull $public: building on $local (Debian packages)" >&2
"$(dirname "$0")/build.sh" "$local" >&2
echo "$local"
