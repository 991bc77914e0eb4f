"""Code every Vigil service imports: settings, wire schemas, clients and the database schema.

Importing this package pulls in no torch: the model code lives in ``vigil_shared.vision``, which
only the trainer and the inference service import.
"""
