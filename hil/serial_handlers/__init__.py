"""pyserial URL handlers of rram-hil (pyserial imports ``protocol_<scheme>`` from here)."""
