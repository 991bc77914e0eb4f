"""The failure a model kind raises when the job's input is wrong (not the trainer)."""

from __future__ import annotations


class JobInputError(Exception):
    """The spec, dataset or named models cannot make a model as asked. The job fails with the
    message, which tells the user what to change; no traceback is logged. A kind's own input
    errors subclass it, so the runner handles a new kind's without knowing them."""
