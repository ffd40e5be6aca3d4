"""``hil faults diff`` across versions of a fault-map store, and ``hil faults history``.

A version is named ``STORE.h5@N`` (``@-1`` the latest); a plain fault-map file compares
as before. Registered after ``faults_cmd``: it replaces that group's ``diff`` with one that
understands both.
"""
from __future__ import annotations

import click


def _load(spec: str):
    """A FaultMap per array from ``PATH`` (fault-map file) or ``PATH@N`` (version N of a store)."""
    from hil.faultmap import FaultMap
    from hil.faultmap_versions import FaultMapVersions, is_version_store

    path, _, ver = spec.rpartition("@") if "@" in spec else (spec, "", "")
    try:
        if is_version_store(path):
            store = FaultMapVersions(path)
            v = store.get(int(ver) if ver else -1)
            return {name: v.faultmap(name) for name in v.codes}, f"version {v.number} ({v.operation})"
        if ver:
            raise click.BadParameter(f"{path} is not a fault-map version store; '@{ver}' needs one", param_hint=spec)
        return {"": FaultMap.load(path)}, "file"
    except (OSError, ValueError, LookupError) as exc:
        raise click.BadParameter(str(exc), param_hint=spec) from None


@click.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--cells", default=50, show_default=True, help="changed cells listed per array")
def diff(old: str, new: str, cells: int) -> None:
    """List the cells whose class changed between two maps: files, or versions STORE.h5@N of a store."""
    from hil.faultmap import CODE_NAMES

    a, what_a = _load(old)
    b, what_b = _load(new)
    if set(a) != set(b):
        if len(a) == 1 and len(b) == 1:
            a, b = {"": next(iter(a.values()))}, {"": next(iter(b.values()))}
        else:
            raise click.ClickException(f"the two maps hold different arrays: {sorted(a)} and {sorted(b)}")
    if what_a != "file" or what_b != "file":
        click.echo(f"{old} [{what_a}] -> {new} [{what_b}]")
    for name in sorted(a):
        try:
            d = a[name].diff(b[name])
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        prefix = f"array {name}: " if name else ""
        click.echo(f"{prefix}{d['n_changed']} of {d['n_compared']} cells changed class")
        for k, v in sorted(d["transitions"].items()):
            click.echo(f"  {k}: {v}")
        for (r, c), o, n in list(zip(d["positions"], d["old"], d["new"]))[:cells]:
            click.echo(f"  ({r}, {c}) {CODE_NAMES[int(o)]} -> {CODE_NAMES[int(n)]}")


@click.command("history")
@click.argument("store", type=click.Path(exists=True, dir_okay=False))
def history(store: str) -> None:
    """One line per version of a fault-map store: operation, chip time, faulty cells per array."""
    from hil.faultmap_versions import FaultMapVersions

    try:
        versions = FaultMapVersions(store)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    for h in versions.history():
        faulty = ", ".join(f"{k} {v}" for k, v in h["faulty"].items())
        click.echo(f"v{h['version']:<4d} {h['operation']:16s} t={h['time_s'] / 3600:9.3f} h  faulty: {faulty}"
                   + (f"  ({h['note']})" if h["note"] else ""))


def register(group: click.Group) -> None:
    faults = group.commands.get("faults")
    if faults is None:
        raise RuntimeError("faults_versions_cmd must be registered after faults_cmd")
    faults.add_command(diff)  # replaces the file-only diff: a plain file still works the same
    faults.add_command(history)
