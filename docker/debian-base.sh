#!/bin/sh
# A Python 3.11 base image made from Debian's own packages, for machines that cannot pull `python:3.11-slim-bookworm`
# from a registry (an offline build host, a mirror-only network). Needs root, debootstrap and a Debian mirror.
#
#   docker/debian-base.sh [TAG]            # default TAG: local/python:3.11-bookworm
#   docker build --build-arg PYTHON_IMAGE=local/python:3.11-bookworm -t materialsearch .
#
# Debian's python3 (3.11 in bookworm) lives in /usr/bin; the Dockerfile runs `python3` and installs the headers that
# lmdb needs in its build stage only.
set -eu

tag="${1:-local/python:3.11-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
trap 'exit 1' INT TERM

debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" >&2
# What debootstrap downloaded stays out of the image (apt-get update fetches fresh lists in each stage).
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
tar -C "$root" -c . | docker import --change 'CMD ["python3"]' - "$tag"
