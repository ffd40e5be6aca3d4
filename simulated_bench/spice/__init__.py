"""SPICE engine: netlists from the numpy models' parameter dataclasses, run through spicelib.

* :mod:`.netlist` writes the Stanford gap memristor (behavioural, gap state node), the
  level-1 NMOS, 1T1R cells (MOD/MOS) and rows x cols crossbars with wire resistance.
* :mod:`.runner` runs them with ngspice (or LTspice where installed) and reads back only
  the requested traces (``SpiceRunner(...).run(netlist, ["v(gap)"])``).
* :mod:`.engine` has :class:`SpiceArray`, the simulated array whose reads, VMM and pulses
  are SPICE runs (``engine: spice`` in a bench file's ``chip`` section).

``spicelib`` is imported by these modules only, so the numpy chip never loads it.
"""
