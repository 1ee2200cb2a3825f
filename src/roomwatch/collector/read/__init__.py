"""The read side: the queries the web app and compliance run, returning plain records.

Neither the web app nor compliance imports the ORM models (collector/models.py): they ask
a function here and get frozen dataclasses (records.py) that no session is attached to, so
a page cannot lazily load a row after its session closed, and a schema change is met here
once rather than in every page and report."""
