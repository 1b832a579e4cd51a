"""Shared test set-up: deterministic hypothesis in CI, Numba pinned to one thread."""
import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# tests/data holds fixtures (fake notebooks that fail or hang on purpose), not tests
collect_ignore_glob = ["data/*"]
