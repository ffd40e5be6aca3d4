"""The README's main job, ``hil demo``, end to end on the embedded simulated bench."""
import re

from click.testing import CliRunner

from hil.cli import cli


def test_demo_scans_programs_and_reads_back(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--no-progress", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "precision 1.000, recall 1.000" in result.output
    converged = float(re.search(r"([\d.]+)% converged", result.output).group(1))
    within = float(re.search(r"([\d.]+)% of programmed cells within 3%", result.output).group(1))
    assert converged >= 99.5 and within >= 99.0
    for name in ("faults.h5", "faults.png", "target.png", "programmed.png", "ispp_run.h5", "scan_run.h5"):
        assert (out / name).stat().st_size > 0
