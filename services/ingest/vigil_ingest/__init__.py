"""Ingest: pulls frames from cameras (streams, video files) and publishes them to Kafka."""
