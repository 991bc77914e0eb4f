"""Trainer: Celery workers that run fine-tuning jobs over datasets in S3."""
