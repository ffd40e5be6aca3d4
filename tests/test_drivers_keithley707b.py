"""Keithley 707B switch matrix driver: channel lists and TSP channel functions."""
import pytest
from driver_contract import expected_protocol

from drivers.keithley707b import Keithley707B, channel_list


def test_channel_functions():
    with expected_protocol(Keithley707B, [
        ('channel.close("1A01,2C12")', None),
        ('channel.open("1A01")', None),
        ('channel.exclusiveclose("1B05,1D07")', None),
        ('print(channel.getclose("allslots"))', "1B05;1D07"),
        ('channel.open("allslots")', None),
        ('print(channel.getclose("slot1"))', "nil"),
        ("*IDN?", "Keithley Instruments Inc., Model 707B, 4455567, 1.4.0"),
    ]) as mx:
        mx.close_channels(["1A01", "2c12"])
        mx.open_channels("1A01")
        mx.exclusive_close("1B05,1D07")
        assert mx.closed_channels() == ["1B05", "1D07"]
        mx.open_all()
        assert mx.closed_channels("slot1") == []
        assert "707B" in mx.id


@pytest.mark.parametrize("bad", ["1I01", "7A01", "1A13", "1A00", "A01", ""])
def test_bad_channels_refused_before_sending(bad):
    with pytest.raises(ValueError):
        channel_list(bad)


def test_shutdown_opens_every_crosspoint():
    with expected_protocol(Keithley707B, [('channel.open("allslots")', None), ("*OPC?", "1")]) as mx:
        mx.shutdown()
        assert mx.isShutdown
