"""Upstream harnesses of large projects (issue 24): failures that are their harness's.

Each sdist reproduces what a healthy large ML or data project's tests did under the probe:
every sampled test failing in the same teardown with a bare AssertionError (a conftest
fixture of theirs), an optional plotting library behind a guarded import, assertions on log
records written for the project's own runner, tests reading the project's ``.git`` folder.
Each must be a harness gap (0 points); the candidate's own failures beside them still count.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pkgfactory import FakeProject, build_sdist, build_wheel, pip_install_target

from pytest_spike.scoring import Weights
from pytest_spike.upstream.findings import unchecked_reason, upstream_findings
from pytest_spike.upstream.results import UpstreamResult
from pytest_spike.upstream.run import SpikeUpstream
from pytest_spike.upstream.sdist import MAX_MEMBERS
from pytest_spike.upstream.verdict import copied_package, harness_gap

NAME = "mlpkg"


#: optuna's way: an optional import inside ``with try_import():`` in one module, imported under
#: ``if _imports.is_successful():`` by another, used there without a check.
OPTIONAL_USER = """\
from mlpkg.plotting import _imports

if _imports.is_successful():
    from mlpkg.plotting import plt


def scatter():
    return plt.scatter()
"""
OPTIONAL_PLOTTING = """\
class try_import:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        self.failed = kind is not None and issubclass(kind, ImportError)
        return self.failed

    def is_successful(self):
        return not self.failed


with try_import() as _imports:
    from spike_absent_plotting import plt


def draw():
    return plt.figure()
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("installed")
    files = {
        f"{NAME}/__init__.py": "VALUE = 1\n",
        f"{NAME}/plotting.py": OPTIONAL_PLOTTING,
        f"{NAME}/scatter.py": OPTIONAL_USER,
    }
    wheel = build_wheel(FakeProject(NAME, files=files), base)
    pip_install_target([wheel], base / "target")
    return {"PYTHONPATH": str(base / "target"), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def probe(tmp_path: Path, env: dict[str, str], sdist_files: dict[str, str]) -> UpstreamResult:
    project = FakeProject(NAME, files={f"{NAME}/__init__.py": "VALUE = 0\n"}, sdist_files=sdist_files)
    sdist = build_sdist(project, tmp_path / "dist")
    return SpikeUpstream(sys.executable, NAME, "1.0", sdist, tmp_path / "work", 60.0, extra_env=env).probe(5)


def scored(result: UpstreamResult) -> dict[str, float]:
    weights = Weights()
    return {f.code: weights.points(f) for f in upstream_findings(result)[0] if weights.points(f) > 0}


def gaps(result: UpstreamResult) -> list[str]:
    return [o.gap for o in result.outcomes.values()]


def test_every_test_failing_in_the_same_bare_teardown_is_the_harness(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    result = probe(
        tmp_path,
        installed,
        {
            "tests/conftest.py": "import pytest\n\n@pytest.fixture(autouse=True)\n"
            "def check_state():\n    yield\n    assert False\n",
            "tests/test_a.py": "import mlpkg\n\ndef test_a():\n    assert mlpkg.VALUE == 1\n",
            "tests/test_b.py": "def test_b():\n    pass\n",
            "tests/test_c.py": "def test_c():\n    pass\n",
        },
    )
    assert [o.outcome for o in result.outcomes.values()] == ["error"] * 3
    assert all(
        "every sampled test failed in the same teardown with the same bare assertion (assert False)" in g
        for g in gaps(result)
    )
    assert scored(result) == {}
    assert "could be checked" in (unchecked_reason(result) or "")


def test_a_teardown_assertion_that_says_something_still_counts(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    result = probe(
        tmp_path,
        installed,
        {
            "tests/conftest.py": "import pytest\n\n@pytest.fixture(autouse=True)\n"
            "def check_state():\n    yield\n    assert False, 'mlpkg left 3 threads running'\n",
            "tests/test_a.py": "def test_a():\n    pass\n",
            "tests/test_b.py": "def test_b():\n    pass\n",
        },
    )
    assert scored(result) == {"upstream.failed": 30}


def test_guarded_optional_imports_log_records_and_git_are_harness_gaps(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    result = probe(
        tmp_path,
        installed,
        {
            "tests/test_plot.py": "try:\n    import spike_absent_plotting.pyplot as plt\nexcept ImportError:\n"
            "    pass\n\ndef test_plot():\n    plt.figure()\n",
            "tests/test_logs.py": "def test_logs():\n"
            "    raise AssertionError(\"Unexpected logs found: ['INFO:app.access:302 GET /login']\")\n",
            "tests/test_git.py": "import mlpkg, os\n\ndef test_version_from_git():\n"
            "    here = os.path.dirname(os.path.dirname(mlpkg.__file__))\n"
            "    open(os.path.join(here, '.git', 'objects', 'info', 'packs'))\n",
            # as a compiled git reader raises it: the path unquoted
            "tests/test_dulwich.py": "import mlpkg, os\n\ndef test_repo():\n"
            "    here = os.path.dirname(os.path.dirname(mlpkg.__file__))\n"
            "    raise FileNotFoundError(os.path.join(here, '.git', 'objects'))\n",
            "tests/test_real.py": "def test_real():\n    helper_that_does_not_exist()\n",
        },
    )
    by_file = {k.split("::")[0]: o for k, o in result.outcomes.items()}
    assert "test_plot.py imports it behind an optional-import guard" in by_file["tests/test_plot.py"].gap
    assert "log records that the project's own test runner sets up" in by_file["tests/test_logs.py"].gap
    assert "git checkout" in by_file["tests/test_git.py"].gap
    assert "git checkout" in by_file["tests/test_dulwich.py"].gap
    # A NameError with no guarded import behind it is the test's (or the candidate's) own.
    assert by_file["tests/test_real.py"].outcome == "failed" and not by_file["tests/test_real.py"].gap
    assert scored(result) == {"upstream.failed": 3}


def test_a_multi_line_teardown_assertion_on_every_test_and_a_gpu_and_a_guard_in_the_package(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    """statsmodels: np.testing's "AssertionError:" (its message on the next lines) in the
    same conftest teardown of every test that ran; numba: CUDA tests without a GPU; optuna:
    a plot helper whose ``plt`` its own ``with try_import()`` left undefined."""
    teardown = probe(
        tmp_path / "teardown",
        installed,
        {
            "tests/conftest.py": "import pytest\n\n@pytest.fixture(autouse=True)\n"
            "def randomstate():\n    yield\n    raise AssertionError('\\nItems are not equal:\\n ACTUAL: 1')\n",
            "tests/test_a.py": "def test_a():\n    pass\n",
            "tests/test_b.py": "def test_b():\n    pass\n",
            "tests/test_c.py": "import pytest\n\n@pytest.mark.skip('not here')\ndef test_c():\n    pass\n",
            # a set-up error of the harness's own (a results module it did not bring) beside them
            "tests/test_d.py": "def test_d(results):\n    pass\n",
        },
    )
    assert sorted(o.outcome for o in teardown.outcomes.values()) == ["error", "error", "error", "skipped"]
    assert "fixture 'results' not found" in teardown.outcomes["tests/test_d.py::test_d"].gap
    assert all(
        "same bare assertion (AssertionError:)" in o.gap
        for k, o in teardown.outcomes.items()
        if o.outcome == "error" and "test_d" not in k
    )
    assert scored(teardown) == {}
    others = probe(
        tmp_path / "others",
        installed,
        {
            "tests/test_cuda.py": "class CudaSupportError(Exception):\n    pass\n\n"
            "def test_driver():\n    raise CudaSupportError('Error at driver init: ')\n",
            "tests/test_draw.py": "from mlpkg.plotting import draw\n\ndef test_draw():\n    draw()\n",
            "tests/test_scatter.py": "from mlpkg.scatter import scatter\n\ndef test_scatter():\n    scatter()\n",
            # the candidate's own module behind the guard: its failing import is its own
            "tests/test_fast.py": "try:\n    import mlpkg.missing_fast as fast\nexcept ImportError:\n"
            "    pass\n\ndef test_fast():\n    fast.run()\n",
        },
    )
    by_file = {k.split("::")[0]: o for k, o in others.outcomes.items()}
    assert "needs a GPU (CUDA)" in by_file["tests/test_cuda.py"].gap
    assert "plotting.py imports it behind an optional-import guard" in by_file["tests/test_draw.py"].gap
    assert "scatter.py imports it behind an optional-import guard" in by_file["tests/test_scatter.py"].gap
    assert by_file["tests/test_fast.py"].outcome == "failed" and not by_file["tests/test_fast.py"].gap
    assert scored(others) == {"upstream.failed": 3}


def test_the_sdists_copy_of_the_package_is_the_harness() -> None:
    run_dir = Path("/tmp/spike-run")
    text = (
        "ImportError: cannot import name '_c_internal_utils' from 'matplotlib' "
        "(/tmp/spike-run/lib/matplotlib/__init__.py)"
    )
    assert "the sdist's copy of matplotlib" in copied_package(text, run_dir)
    assert "the sdist's copy" in harness_gap(text, run_dir=run_dir, src_root=None, packages=["matplotlib"])
    installed = text.replace("/tmp/spike-run/lib", "/venv/lib/python3.11/site-packages")
    assert copied_package(installed, run_dir) == ""  # the installed package lacks it: counts


def test_an_sdist_over_the_member_limit_is_not_sampled_not_unsafe(
    tmp_path: Path, installed: dict[str, str]
) -> None:
    """catboost's sdist (the whole monorepo) has over 20,000 files: our limit, not an attack."""
    files = {f"vendor/src/f{i}.c": "" for i in range(MAX_MEMBERS)}
    files["tests/test_a.py"] = "def test_a():\n    pass\n"
    result = probe(tmp_path, installed, files)
    assert result.status == "none" and "larger than pytest-spike unpacks" in result.reason
    assert [f.code for f in upstream_findings(result)[0]] == ["upstream.unavailable"]
    assert scored(result) == {}
    assert "larger than pytest-spike unpacks" in (unchecked_reason(result) or "")
