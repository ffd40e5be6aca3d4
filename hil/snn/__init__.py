"""Seed 004's spiking network on 1T1R arrays.

* :mod:`.coding` the digits split and latency coding (eq. 10)
* :mod:`.network` LIF neurons with double-exponential synapses (eq. 1-5), surrogate-gradient
  training, the ANN baseline, quantisation
* :mod:`.array_inference` weights -> conductances of the Cu:Te device in its MOD cell, the
  programming model, spike-gated inference on a :class:`~simulated_bench.array.SimulatedArray`
* :mod:`.study` the Fig. 9 sweeps (bits, tuning error, read noise)
* :mod:`.spice_nsn` the neuron-synapse-neuron unit and the whole network in ngspice
"""
