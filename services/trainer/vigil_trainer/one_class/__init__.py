"""The one_class fit: normal frames only, appearance memory bank plus motion, calibrated on
held-out clips. ``fit_one_class`` is what the job runner calls."""

from vigil_shared.datasets import DatasetError
from vigil_trainer.one_class.fit import OneClassFit, fit_one_class

__all__ = ["DatasetError", "OneClassFit", "fit_one_class"]
