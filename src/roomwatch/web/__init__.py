"""The staff web app (FastAPI): live board, alerts, episodes, incident records, rooms."""
