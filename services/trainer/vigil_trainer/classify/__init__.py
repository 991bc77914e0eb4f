"""The classify kind: a catalog backbone and a new head fine-tuned on labeled frames.

``job.run`` is the kind's entry. A fit is ``data`` → ``engine`` (with ``optim``,
``augment``, ``losses``, ``structure``, ``checkpoint``), or a ``search`` of fits and a
``fusion`` of its best trials (``tuning``); then ``evaluate`` and ``compare``. A spec whose
``fusion.kind`` is ``registry_models`` fits an ensemble of registry models instead
(``registry_fusion``, ``held_out``, ``score_fusion``).
"""
