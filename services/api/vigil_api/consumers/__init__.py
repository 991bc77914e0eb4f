"""The Kafka consumer processes, each with its ``*_main`` entry point (``python -m``)."""
