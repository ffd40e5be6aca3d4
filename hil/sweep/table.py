"""The result table of a sweep: Parquet parts in one directory, written as points finish.

Why Parquet and not HDF5: a sweep's rows are heterogeneous records (numbers, strings,
a few nested values) whose columns are only known once the first point returns, and
they must be appended by a process that can be killed at any moment. A Parquet part is
written to a temporary name and renamed into place, so the table on disk is always a
set of complete, typed files; ``pandas.read_parquet(directory)`` opens it with no extra
package (pandas' own HDF5 reader needs PyTables, and an h5py compound table would need
the schema up front). Run files of protocols stay HDF5 (see :mod:`hil.runstore`).

Layout::

    OUT/_sweep.json            function, spec and software version (ignored by pandas)
    OUT/part-<stamp>-<n>.parquet  rows of finished points; columns: _point (key),
                               _index (position in the grid), _row (row of that point:
                               a function may return several), the point's parameters,
                               then what the function returned

A point counts as done when its key is in a part; a sweep that completes merges its
parts into one. Nested values (dicts, lists) are
stored as JSON text; :func:`read_table` returns a DataFrame sorted by ``_index``.
"""
from __future__ import annotations

import glob
import json
import math
import os
import time
import uuid
from typing import Any, Iterable, Mapping

import numpy as np

MANIFEST = "_sweep.json"
KEY, INDEX, ROW = "_point", "_index", "_row"
JSON_META = "hil_json_columns"  # Parquet schema metadata: columns stored as JSON text


class TableMismatch(ValueError):
    """The output directory holds the table of another sweep."""


def _cell(value: Any) -> Any:
    """A table cell: scalars as themselves, everything else as canonical JSON text."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} in a sweep table")


class ResultTable:
    """An append-only table of finished points in directory ``path``."""

    def __init__(self, path: str | os.PathLike, manifest: Mapping[str, Any]):
        self.path = os.fspath(path)
        os.makedirs(self.path, exist_ok=True)
        mpath = os.path.join(self.path, MANIFEST)
        if os.path.exists(mpath):
            with open(mpath) as fh:
                old = json.load(fh)
            if old.get("function") != manifest.get("function"):
                raise TableMismatch(f"{self.path} holds results of {old.get('function')!r}, not "
                                    f"{manifest.get('function')!r}; choose another output directory")
        else:
            tmp = mpath + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(dict(manifest), fh, indent=1, sort_keys=True, default=str)
            os.replace(tmp, mpath)
        self._pending: list[dict] = []
        self._last_flush = time.monotonic()
        self._run = uuid.uuid4().hex[:8]
        self._n = 0
        self._json: set[str] = set()  # columns holding JSON text

    def parts(self) -> list[str]:
        return sorted(glob.glob(os.path.join(self.path, "part-*.parquet")))

    def done_keys(self) -> set[str]:
        """Keys of the points already in the table."""
        import pyarrow.parquet as pq

        keys: set[str] = set()
        for part in self.parts():
            keys.update(pq.read_table(part, columns=[KEY]).column(KEY).to_pylist())
        return keys

    def add(self, rows: Iterable[Mapping[str, Any]], every_s: float = 2.0, every_rows: int = 256) -> None:
        """Queue finished rows; they reach the disk at the latest ``every_s`` seconds later."""
        for r in rows:
            row = {}
            for k, v in r.items():
                row[k] = _cell(v)
                if isinstance(row[k], str) and not isinstance(v, str):
                    self._json.add(k)
            self._pending.append(row)
        if len(self._pending) >= every_rows or time.monotonic() - self._last_flush >= every_s:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows as one new part (atomically: temporary file, then rename)."""
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = list(dict.fromkeys(k for row in self._pending for k in row))  # from_pylist reads row 0's only
        table = pa.Table.from_pylist([{k: row.get(k) for k in names} for row in self._pending])
        table = table.replace_schema_metadata({JSON_META: json.dumps(sorted(self._json))})
        self._n += 1
        name = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{self._run}-{self._n:05d}.parquet"
        final = os.path.join(self.path, name)
        tmp = os.path.join(self.path, "." + name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, final)
        self._pending = []


def compact(path: str | os.PathLike) -> int:
    """Merge the parts of a table into one (types unified, repeats dropped); returns the row count.

    The merged part is renamed into place before the old parts go, so a kill in between
    leaves repeats that :func:`read_table` drops, never a loss.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.fspath(path)
    parts = sorted(glob.glob(os.path.join(path, "part-*.parquet")))
    if len(parts) < 2:
        return -1
    tables = [pq.read_table(p) for p in parts]
    json_cols = sorted(set().union(*(_json_columns(t) for t in tables)))
    merged = pa.concat_tables(tables, promote_options="permissive")
    seen: set = set()
    keep = []
    for key in zip(merged.column(KEY).to_pylist(), merged.column(ROW).to_pylist()):
        keep.append(key not in seen)
        seen.add(key)
    table = merged.filter(pa.array(keep)).sort_by([(INDEX, "ascending"), (ROW, "ascending")])
    table = table.replace_schema_metadata({JSON_META: json.dumps(json_cols)})
    name = f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}-compact.parquet"
    tmp = os.path.join(path, "." + name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, os.path.join(path, name))
    for p in parts:
        os.remove(p)
    return table.num_rows


def _json_columns(table) -> set[str]:
    return set(json.loads((table.schema.metadata or {}).get(JSON_META.encode(), b"[]")))


def read_table(path: str | os.PathLike, decode: bool = False, keys: Iterable[str] | None = None):
    """The whole table as a pandas DataFrame, one row per result row, sorted by grid position.

    Parts written by separate runs may differ in a column's inferred type (an all-missing
    column, ints vs floats); they are merged with type promotion. A point found twice (a
    run killed between a write and its bookkeeping) is kept once.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = sorted(glob.glob(os.path.join(os.fspath(path), "part-*.parquet")))
    if not parts:
        import pandas as pd

        return pd.DataFrame(columns=[KEY, INDEX, ROW])
    tables = [pq.read_table(p) for p in parts]
    json_cols = set().union(*(_json_columns(t) for t in tables))
    df = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    df = df.drop_duplicates(subset=[KEY, ROW], keep="first")
    if keys is not None:
        df = df[df[KEY].isin(set(keys))]
    if decode:
        for col in json_cols & set(df.columns):
            df[col] = [json.loads(v) if isinstance(v, str) else v for v in df[col]]
    return df.sort_values([INDEX, ROW], kind="stable").reset_index(drop=True)


def same_results(a, b, ignore: Iterable[str] = ()) -> bool:
    """Whether two tables hold bitwise the same results (columns in ``ignore``, e.g. timings, aside)."""
    drop = [c for c in ignore if c in a.columns or c in b.columns]
    a = a.drop(columns=[c for c in drop if c in a.columns])
    b = b.drop(columns=[c for c in drop if c in b.columns])
    if sorted(a.columns) != sorted(b.columns) or len(a) != len(b):
        return False
    b = b[list(a.columns)]
    for col in a.columns:
        for x, y in zip(a[col].tolist(), b[col].tolist()):
            if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
                continue
            if x != y:
                return False
    return True
