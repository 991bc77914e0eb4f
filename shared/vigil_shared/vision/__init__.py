"""Model code shared by the trainer and the inference service (torch; never imported by the API)."""
