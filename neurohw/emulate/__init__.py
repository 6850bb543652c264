"""Bit-exact integer emulation of neurohw networks (Lava ``fixed_pt`` semantics)."""

from .engine import RECORDABLE, RECORDABLE_ALL, EmulatorRun, prepare_input, run
from .steps import LIFParams, LIFState, apply_exp, dense_accumulate, lif_step, wrap32

__all__ = ["run", "EmulatorRun", "prepare_input", "RECORDABLE", "RECORDABLE_ALL", "LIFParams", "LIFState",
           "lif_step", "dense_accumulate", "apply_exp", "wrap32"]
