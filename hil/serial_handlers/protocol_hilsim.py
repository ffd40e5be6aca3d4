"""``hilsim://NAME``: a simulated instrument in this process, reached through pyserial."""
from hil.transport import EmulatorSerial as Serial

__all__ = ["Serial"]
