"""Real data nobody here wrote: the Vega datasets (cars, iris, stocks, Seattle weather...).

They ship inside the ``vega-datasets`` wheel on the package index. pip downloads the wheel
(through your pip configuration) and its ``_data`` folder is extracted, once, into the
example's spike_data folder (see its pytest.ini). Nothing is installed: the package itself
would pull in pandas. Shared by the json_parsers and dataframes examples.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

WHEEL = "vega-datasets==0.9.0"


def fetch_vega(data: Path) -> None:
    """Extract the Vega data files into ``data`` unless they are there already."""
    if data.is_dir() and any(data.iterdir()):
        return
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                WHEEL,
                "--dest",
                tmp,
            ],
            capture_output=True,
            text=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise pytest.UsageError(
                f"could not download {WHEEL} for the example's data: "
                f"{(done.stderr.strip().splitlines() or ['no wheel'])[-1]}"
            )
        staging = data.with_name(".vega-partial")
        with zipfile.ZipFile(wheels[0]) as archive:
            for member in archive.infolist():
                name = Path(member.filename)
                # Only the data files, by their base name: no path from the archive is trusted.
                if name.parent.name == "_data" and name.suffix in (".json", ".csv"):
                    staging.mkdir(parents=True, exist_ok=True)
                    (staging / name.name).write_bytes(archive.read(member))
        staging.replace(data)
