"""The one_class fit: normal frames only, appearance memory bank plus motion, calibrated on
held-out clips. ``job.run`` is the kind's entry; ``fit_one_class`` is the fit it calls."""

from vigil_shared.datasets import DatasetError
from vigil_trainer.one_class.fit import OneClassFit, fit_one_class

__all__ = ["DatasetError", "OneClassFit", "fit_one_class"]
