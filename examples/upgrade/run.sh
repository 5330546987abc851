#!/bin/sh
# Upgrade spike of a project pinned to numpy 1.24: which of 1.26.4 and 2.0.2 can it move to?
# Needs the package index (pip's configuration is respected); uses uv when it is on PATH.
# Run from anywhere:
#   sh examples/upgrade/run.sh
set -e
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
uv=${UV:-uv}
if command -v "$uv" >/dev/null 2>&1; then
    "$uv" venv -q --allow-existing .venv
    "$uv" pip install -q -p .venv/bin/python -r requirements.txt -e ../..
else  # no uv on PATH: the standard library's venv and pip
    python3 -m venv .venv
    .venv/bin/pip install -q -r requirements.txt -e ../..
fi
exec .venv/bin/pytest -p no:cacheprovider --spike-upgrade numpy \
    --spike-upgrade-versions "1.26.4, 2.0.2" --spike-json upgrade.json --spike-md upgrade.md "$@"
