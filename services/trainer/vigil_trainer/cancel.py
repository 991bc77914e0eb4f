"""Cancellation of a running job: raised between steps when the job row says ``cancelling``."""

from __future__ import annotations


class JobCancelled(Exception):  # noqa: N818 - it is an outcome, not a fault
    """The operator cancelled the job; the runner marks it ``cancelled`` and keeps nothing."""
