"""SPICE engine: netlists from the numpy models' parameter dataclasses, run through spicelib."""
