"""The names of the GPIO pins on a Raspberry Pi's 40-pin header, as gpiozero knows them.

The agent opens its pins through gpiozero, which accepts a BCM number (17 or "17") or one
of the names below ("GPIO17", "BCM17", "BOARD11", "J8:11", "WPI0"; case matters) and
refuses anything else when the agent starts. The configuration schema checks pins here, so
``roomwatch validate-config`` refuses what the agent would (tests/test_operator_errors.py
compares this table with gpiozero's own). No gpiozero import: the schema stays light.
"""

from __future__ import annotations

#: Physical pin on the 40-pin header (J8) -> (BCM GPIO number, wiringPi number).
HEADER: dict[int, tuple[int, int]] = {
    3: (2, 8), 5: (3, 9), 7: (4, 7), 8: (14, 15), 10: (15, 16), 11: (17, 0), 12: (18, 1),
    13: (27, 2), 15: (22, 3), 16: (23, 4), 18: (24, 5), 19: (10, 12), 21: (9, 13),
    22: (25, 6), 23: (11, 14), 24: (8, 10), 26: (7, 11), 27: (0, 30), 28: (1, 31),
    29: (5, 21), 31: (6, 22), 32: (12, 26), 33: (13, 23), 35: (19, 24), 36: (16, 27),
    37: (26, 25), 38: (20, 28), 40: (21, 29),
}  # fmt: skip


def _names() -> dict[str, int]:
    names: dict[str, int] = {}
    for physical, (bcm, wpi) in HEADER.items():
        for name in (str(bcm), f"GPIO{bcm}", f"BCM{bcm}", f"BOARD{physical}", f"J8:{physical}"):
            names[name] = bcm
        names[f"WPI{wpi}"] = bcm
    return names


#: Every accepted pin name -> its BCM GPIO number.
NAMES = _names()


def bcm_of(pin: int | str) -> int:
    """The BCM GPIO number of ``pin``; ValueError, saying what is accepted, if gpiozero
    would refuse it."""
    if isinstance(pin, bool):
        raise ValueError("a pin is a number or a name, not true/false")
    if isinstance(pin, int):
        if 0 <= pin <= 27:
            return pin
        raise ValueError("BCM pin numbers on a 40-pin Raspberry Pi are 0 to 27")
    if not pin.strip():
        raise ValueError("pin name is empty")
    found = NAMES.get(pin)
    if found is None:
        raise ValueError(
            f"{pin!r} is not a GPIO pin name: use a BCM number 0-27 (e.g. 17) or a name "
            "such as 'GPIO17', 'BCM17', 'BOARD11' or 'J8:11' (case matters)"
        )
    return found
