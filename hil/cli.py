"""The ``hil`` command line.

Each sub-command lives in its own module under :mod:`hil.commands`; this file only
assembles them, so adding a command touches one line here.
"""
from __future__ import annotations

import importlib

import click

#: modules under hil.commands that each define ``register(group)``
COMMAND_MODULES: tuple[str, ...] = (
    "demo_cmd",
    "sim_cmd",
    "scan_cmd",
    "faults_cmd",
    "faults_versions_cmd",
    "service_cmd",
    "program_cmd",
    "map_cmd",
    "matrix_cmd",
    "sweep_cmd",
    "campaign_cmd",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rram-hil")
def cli() -> None:
    """rram-hil: hardware-in-the-loop work on 1T1R ReRAM crossbar chips."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"hil.commands.{_name}").register(cli)


def main() -> None:  # console-script entry point
    cli()


if __name__ == "__main__":
    main()
