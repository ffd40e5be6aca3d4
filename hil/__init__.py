"""rram-hil core: bench, data types, storage, algorithms; the ``hil`` command line on top."""
