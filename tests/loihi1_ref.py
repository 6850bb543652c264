"""The independent Loihi 1 reference used by tests/test_loihi1.py.

It lives in the package now (:mod:`neurohw.backends.nengo_loihi`, also behind
``neurohw verify --against nengo-loihi``); this module keeps the tests' import.
"""

from neurohw.backends.nengo_loihi import nengo_loihi_available, run_nengo_loihi  # noqa: F401
