"""``python -m hil``: the same as the ``hil`` command."""
from hil.cli import main

main()
