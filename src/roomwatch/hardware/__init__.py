"""Drivers for the room's sensors and outputs, each taking a pin factory or bus.

The same code runs on a Raspberry Pi (gpiozero's default pin factory) and on a
laptop or in CI (``gpiozero.pins.mock.MockFactory``), which tests drive like
real wiring (:func:`roomwatch.hardware.gpio.drive`).
"""
