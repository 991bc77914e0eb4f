"""Retention: what each camera's footage may outlive, and the sweep that deletes the rest
(``python -m vigil_api.retention``)."""
