"""Backends that run neurohw networks on other simulators (Lava)."""
