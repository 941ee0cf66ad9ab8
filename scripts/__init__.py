"""Build and maintenance scripts, run as modules (`python -m scripts.prepare_models`)."""
