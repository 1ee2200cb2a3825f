"""The pure shared core: wire contract, policy profiles, rules, room state machine, clock.

Nothing in here reads the time, a socket, a file outside the package, or a
database (import-linter enforces the library side of that promise).
"""
