"""Typed messages on the wire and in storage; exported as JSON Schema to ``docs/schemas``."""
