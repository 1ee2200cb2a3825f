"""Roomwatch: watches school time-out and seclusion rooms.

Packages, by floor (every import points down, enforced by import-linter):

* top: :mod:`roomwatch.cli` composes the programs below;
* middle: :mod:`roomwatch.edge_agent` and :mod:`roomwatch.collector`, which never
  import each other;
* bottom: :mod:`roomwatch.core` (pure: wire contract, policy profiles, rules,
  room state machine, clock), :mod:`roomwatch.hardware` (drivers and fakes),
  :mod:`roomwatch.firmware_config` (device configuration) and
  :mod:`roomwatch.transport` (the MQTT client plumbing both shells share).
"""

__version__ = "0.1.0"
