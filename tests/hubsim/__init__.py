"""A self-contained Hugging Face Hub-compatible HTTP server for tests (see ``server.py``)."""
