"""Inference: scores frames from Kafka with a pretrained backbone and emits anomaly events."""
