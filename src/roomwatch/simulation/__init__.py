"""Scenarios in virtual time on the real agent, broker and collector; the demo's engine."""
