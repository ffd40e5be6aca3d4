"""Instrument drivers: one module per model, speaking the instrument's own language.

They stand on pyvisa, pymeasure and pyserial only and know nothing of memristors:
``keithley2450`` (SCPI, pymeasure's driver extended), ``keysight81160a`` (SCPI,
pymeasure's driver), ``keithley2600b`` (TSP, ours), ``keithley707b`` (TSP switch
matrix, ours), ``addressing_board`` (the AB64 board's line protocol over pyserial).
"""
