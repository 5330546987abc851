#!/bin/sh
# Upgrade spike of a project pinned to numpy 1.24: which of 1.26.4 and 2.0.2 can it move to?
# Needs uv and the package index (pip's configuration is respected). Run from anywhere:
#   sh examples/upgrade/run.sh
set -e
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
uv=${UV:-uv}
"$uv" venv -q .venv
"$uv" pip install -q -p .venv/bin/python -r requirements.txt -e ../..
exec .venv/bin/pytest -p no:cacheprovider --spike-upgrade numpy \
    --spike-upgrade-versions "1.26.4, 2.0.2" --spike-json upgrade.json --spike-md upgrade.md "$@"
