"""The scale script, kept working on a small suite (its 2000-test run is too slow for CI)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "scale.py"


@pytest.mark.skipif(not SCRIPT.exists(), reason="scripts/ is not shipped in the sdist")
def test_scale_script_runs_a_generated_suite_under_xdist_and_measures_it() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--tests", "40", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "scale: pytest exit 0: 40 passed in " in result.stdout
    assert re.search(r"^scale: wall time \d+\.\d s", result.stdout, re.MULTILINE)
    peak = re.search(r"^scale: peak RSS of one process .* (\d+) MiB$", result.stdout, re.MULTILINE)
    assert peak is not None
    assert int(peak.group(1)) > 0
