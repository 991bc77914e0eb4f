"""Classify fine-tuning: a catalog backbone and a new head trained on labeled frames."""
