"""Run files: streamed records, metadata, resumption, refusal to mix experiments."""
import h5py
import numpy as np
import pytest

from hil.runstore import RunMismatch, RunStore, read_run

REC = np.dtype([("row", "i4"), ("g", "f8")])


def _open(path, params=None, **kw):
    return RunStore.open(path, "demo", params or {"tol": 0.03, "ladder": [1.0, 2.0]}, (3, 4), bench_file="name: x",
                         bench_meta={"bench_name": "x"}, chip_id="C1", seed=7, **kw)


def test_metadata_fields_and_tables_round_trip(tmp_path):
    path = tmp_path / "run.h5"
    with _open(path) as run:
        run.cell_field("g", float, np.nan)
        run.table("reads", REC)
        run.append("reads", np.array([(0, 1e-5), (1, 2e-5)], REC))
        run.write_cells([0, 2], [1, 3], done=True, g=[1e-5, 3e-5])
    out = read_run(path)
    assert out["protocol"] == "demo" and out["chip_id"] == "C1" and out["seed"] == 7
    assert out["parameters"] == {"ladder": [1.0, 2.0], "tol": 0.03}
    assert out["bench_file"] == "name: x" and out["bench"] == {"bench_name": "x"}
    assert out["status"] == "complete" and out["software_version"]
    assert out["cells"]["done"].sum() == 2 and out["cells"]["g"][2, 3] == 3e-5
    assert np.isnan(out["cells"]["g"][0, 0])
    assert out["tables"]["reads"]["g"].tolist() == [1e-5, 2e-5]
    assert out["sessions"]["status"].tolist() == [b"complete"]


def test_resume_keeps_done_cells_and_counts_sessions(tmp_path):
    path = tmp_path / "run.h5"
    run = _open(path)
    run.cell_field("g", float, np.nan)
    run.write_cells([1], [1], done=True, g=[5e-6])
    run.flush()
    run.finish("interrupted")
    again = _open(path)
    assert again.resumed and again.done[1, 1] and again.done.sum() == 1
    again.finish()
    assert [s.decode() for s in read_run(path)["sessions"]["status"]] == ["interrupted", "complete"]


def test_other_parameters_are_refused(tmp_path):
    path = tmp_path / "run.h5"
    _open(path).finish()
    with pytest.raises(RunMismatch, match="other parameters"):
        _open(path, {"tol": 0.01})
    with pytest.raises(RunMismatch, match="holds a"):
        RunStore.open(path, "other", {"tol": 0.03, "ladder": [1.0, 2.0]}, (3, 4))
    # resume=False starts over
    fresh = _open(path, {"tol": 0.01}, resume=False)
    assert not fresh.resumed
    fresh.finish()


def test_a_run_file_another_process_is_writing_is_refused_as_such(tmp_path):
    """A second command on the same run file while the first still runs: told so, not 'not a run file'."""
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "run.h5"
    _open(path).finish("interrupted")
    root = Path(__file__).resolve().parents[1]
    holder = subprocess.Popen([sys.executable, "-c", f"import h5py, sys; f = h5py.File({str(path)!r}, 'r+'); "
                               "print('open', flush=True); sys.stdin.read()"], cwd=root, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(RunMismatch, match=r"run.h5 is open for writing in another process"):
            _open(path)
    finally:
        holder.communicate("", timeout=30)
    again = _open(path)  # free again once it is closed
    assert again.resumed
    again.finish()


def test_a_file_left_running_by_a_killed_process_resumes_from_a_fresh_copy(tmp_path):
    """Everything within the datasets' extents is kept, tables stay appendable (their strings too)."""
    path = tmp_path / "run.h5"
    vl = np.dtype([("t", "f8"), ("record", h5py.string_dtype())])
    run = _open(path)
    run.cell_field("g", float, np.nan)
    run.write_cells([1], [2], done=True, g=[5e-6])
    run.table("events", vl, chunk=4)
    run.append("events", np.array([(1.0, '{"a": 1}')], vl))
    run.flush()
    run._f.close()  # the process is killed: the file stays marked running
    again = _open(path)
    assert again.resumed and again.done[1, 2] and again.done.sum() == 1
    again.append("events", np.array([(2.0, '{"b": 2}'), (3.0, "")], vl))
    again.finish()
    out = read_run(path)
    assert out["cells"]["g"][1, 2] == 5e-6 and np.isnan(out["cells"]["g"][0, 0])
    assert out["tables"]["events"]["record"].astype(str).tolist() == ['{"a": 1}', '{"b": 2}', ""]
    assert [s.decode() for s in out["sessions"]["status"]] == ["running", "complete"]
    assert not (tmp_path / "run.h5.mending").exists()


def test_unclosed_file_is_readable_after_flush(tmp_path):
    """A run that was never finished (killed) still opens, with status 'running'."""
    path = tmp_path / "run.h5"
    run = _open(path)
    run.cell_field("g", float, np.nan)
    run.write_cells([0], [0], done=True, g=[1e-6])
    run.flush()
    run._f.id.close()  # drop the handle without finishing, like a killed process
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "running" and f["cells/done"][0, 0]
