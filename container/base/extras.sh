#!/usr/bin/env bash
# Fills DIR (build/docker-extras/VARIANT) with what this machine's pip uses and an image
# build cannot reach by itself: the CA bundle pip trusts (PIP_CERT, SSL_CERT_FILE or pip's
# `cert` setting) as ca.crt, and for VARIANT=cpu the pinned torch CPU wheel from pip's
# find-links folder.  Only the images' build stage sees DIR (container/Dockerfile.*).
#   container/base/extras.sh DIR VARIANT PIP
set -euo pipefail
dir=$1 variant=$2 pip=$3

rm -rf "$dir"
mkdir -p "$dir"
ca=${PIP_CERT:-${SSL_CERT_FILE:-$("$pip" config get global.cert 2>/dev/null || true)}}
if [ -n "$ca" ] && [ -f "$ca" ]; then
    cp "$ca" "$dir/ca.crt"
fi
if [ "$variant" = cpu ]; then
    version=$(sed -n 's/^torch==//p' container/requirements.txt)
    links=$("$pip" config get global.find-links 2>/dev/null || true)
    for folder in $links; do
        for wheel in "$folder"/torch-"$version"+cpu-cp311-*.whl; do
            # A hard link when it can: the wheel is 200 MB.
            [ -f "$wheel" ] && { ln -f "$wheel" "$dir/" 2>/dev/null || cp "$wheel" "$dir/"; }
        done
    done
fi
ls "$dir"
