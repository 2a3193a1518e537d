"""Test configuration: hypothesis runs derandomised (the same examples every run) unless
HYPOTHESIS_PROFILE=explore is set, so CI results are reproducible."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
