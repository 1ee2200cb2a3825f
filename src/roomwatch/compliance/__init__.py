"""Compliance: episode verdicts, deadlines, reports, audit checks, retention and privacy
(issue 7; docs/compliance.md). Sits above the collector: it reads the collector's database."""
