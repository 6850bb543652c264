"""Lava's weight sign-mode numbers, in one place (no Lava import).

Lava's ``lava.utils.weightutils.SignMode`` numbers the modes MIXED = 1,
EXCITATORY = 2, INHIBITORY = 3; neurohw names them as :data:`neurohw.ir.SIGN_MODES`.
The Lava backend's builder (:mod:`neurohw.backends.lava._builder`) converts
names to numbers, the NIR reader (:mod:`neurohw.nirio`) numbers to names.
The region between the ``standalone`` markers is copied verbatim into every
exported ``run_lava.py`` (:func:`neurohw.backends.lava.graph.standalone_source`),
so it must need nothing but Python.
"""

# ---- standalone: begin (copied verbatim into exported run_lava.py; plain Python) ----
#: Lava's ``lava.utils.weightutils.SignMode`` values, by neurohw sign-mode name
LAVA_SIGN_MODE = {"mixed": 1, "excitatory": 2, "inhibitory": 3}
# ---- standalone: end ----

LAVA_SIGN_MODE_NAME = {code: name for name, code in LAVA_SIGN_MODE.items()}
"""neurohw sign-mode name by Lava ``SignMode`` value (the inverse of :data:`LAVA_SIGN_MODE`)."""

__all__ = ["LAVA_SIGN_MODE", "LAVA_SIGN_MODE_NAME"]
