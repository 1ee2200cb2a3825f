"""The collector: ingest, storage, the authoritative rules, alert lifecycle and delivery."""
