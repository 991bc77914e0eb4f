"""API: the FastAPI gateway operators use, and the sink that stores events in PostgreSQL."""
