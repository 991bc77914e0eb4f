"""The HTTP routes, one module per area; ``vigil_api.main`` mounts each module's ``router``."""
