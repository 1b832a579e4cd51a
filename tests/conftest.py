"""Shared test set-up: deterministic hypothesis in CI, Numba pinned to one thread."""
import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from hypothesis import Phase, settings  # noqa: E402

# no explain phase: after a failure it traces every line of every shrink run (sys.settrace),
# which made a failing kernel model test take minutes and grow by gigabytes before reporting
PHASES = tuple(p for p in Phase if p is not Phase.explain)
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True, phases=PHASES)
settings.register_profile("dev", deadline=None, phases=PHASES)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# tests/data holds fixtures (fake notebooks that fail or hang on purpose), not tests
collect_ignore_glob = ["data/*"]
