#!/usr/bin/env bash
# Builds the local base image (default reranker-base:bookworm) from Debian's own packages,
# for machines that reach a Debian mirror but no image registry (FROM python:... cannot
# pull there).  It gives what the Dockerfiles need from python:3.11-slim-bookworm:
# Python 3.11 with venv, and CA certificates.  Idempotent: an existing image is kept.
#   container/base/build.sh [IMAGE] [MIRROR]
set -euo pipefail

image=${1:-reranker-base:bookworm}
# The mirror apt on this machine uses (deb822 sources), else Debian's CDN.
mirror=${2:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}
mirror=${mirror:-http://deb.debian.org/debian}

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image exists: nothing to do"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$mirror"
# What an image does not need: the package cache, package lists, docs and man pages.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$image"
echo "built $image"
