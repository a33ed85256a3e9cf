"""The SQLAlchemy job store: sessions, jobs, stage runs, artifacts and events."""
