"""Helpers and command-line tools for the assistant's maintainers (e.g. `python -m tools.review`)."""
