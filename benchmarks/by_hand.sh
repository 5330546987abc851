#!/usr/bin/env bash
# The baseline of benchmark 2: what a person does by hand for each candidate.
#   by_hand.sh WORK PYTHON DIST:MODULE...
# venv + pip install (candidate and pytest) + import + pip download of the sdist of the
# installed version + pytest on the sdist's tests. pip's own cache (PIP_CACHE_DIR) decides
# cold or warm; the virtual environments are always new, as in a throwaway shell session.
set -u
work=$1
python=$2
shift 2
for spec in "$@"; do
    dist=${spec%%:*}
    module=${spec##*:}
    venv="$work/venv-$dist"
    sdist="$work/sdist-$dist"
    rm -rf "$venv" "$sdist"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q "$dist" pytest
    "$venv/bin/python" -c "import $module"
    version=$("$venv/bin/python" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$dist")
    "$venv/bin/python" -m pip download -q --no-deps --no-binary :all: "$dist==$version" -d "$sdist"
    tar -xzf "$sdist"/*.tar.gz -C "$sdist"
    for root in "$sdist"/*/; do
        if [ -d "$root/tests" ]; then
            (cd "$root" && "$venv/bin/python" -m pytest -q -p no:cacheprovider tests >/dev/null) || true
        fi
    done
done
