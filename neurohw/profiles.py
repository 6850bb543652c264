"""Hardware profiles: the bit-widths and limits of a target chip, as data.

A :class:`HardwareProfile` is a frozen record of every integer width the
integer LIF datapath uses and of the per-core / per-chip resource limits.
The step code and the validators read these numbers; none are hard-coded
elsewhere.  Sources for every published figure are in the ``sources`` field
of each profile and in ``docs/profiles.md``.

Conventions (all widths in bits):

* ``weight_bits`` -- magnitude bits of a synaptic weight mantissa.  A
  mixed-sign weight spans ``[-2**weight_bits, 2**weight_bits - 1]``
  (Lava's ``clip_weights``), an excitatory one ``[0, 2**weight_bits - 1]``,
  an inhibitory one ``[-(2**weight_bits - 1), 0]``.
* ``decay_bits`` -- width of the unsigned decay constants ``du``/``dv``.
* ``state_bits`` -- width of the signed current ``u`` and voltage ``v``.
* ``vth_bits`` -- width of the unsigned threshold mantissa; the threshold
  compared against ``v`` is ``vth << vth_shift``.
* ``bias_bits`` -- width of the signed bias mantissa; the bias added to ``v``
  each step is ``bias_mant << bias_exp`` (an arithmetic right shift, i.e.
  floor, for a negative exponent).
* ``act_shift`` -- left shift applied to the summed synaptic input before it
  is added to ``u``.
* ``graded_spike_bits`` -- payload width of a graded spike (0: binary spikes).
* ``semantics`` -- the per-step rule set: ``"lava"`` (Lava's fixed-point
  ``PyLifModelBitAcc``/``PyDenseModelBitAcc``) or ``"loihi1"`` (Loihi 1 as
  nengo-loihi 1.1.0's emulator computes it: 22-bit dendritic sum, 24-bit
  two's-complement ``u`` and ``u + bias``, ``v`` clipped to ``[vmin, vmax]``,
  per-synapse weight rounding; ``docs/loihi1.md``).
* ``dendrite_bits`` -- width of the summed synaptic input after ``act_shift``
  (wrapped, two's complement): 32 in Lava (int32), 22 on Loihi 1.
* ``refract_delay_max`` -- largest ``refract_delay`` of a population.
* ``trace_bits`` / ``trace_decay_bits`` -- width of an unsigned spike trace and
  of its decay constant (``docs/fixed-point.md``, "Spike traces").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Tuple

from .errors import ValidationError

__all__ = [
    "HardwareProfile",
    "LOIHI1",
    "LOIHI2",
    "LOIHI1_LAVA",
    "generic",
    "get_profile",
    "parse_profile",
    "PROFILES",
    "SEMANTICS",
]

SEMANTICS = ("lava", "loihi1")
"""Rule sets of the integer step (:attr:`HardwareProfile.semantics`)."""


@dataclass(frozen=True)
class HardwareProfile:
    """Bit-widths and resource limits of one neuromorphic target.

    All widths are in bits, memory in bits, counts in units (neurons, axons,
    cores), delays in time steps.  ``sources`` maps a field name to the
    publication or code the figure comes from.
    """

    name: str
    # --- synapses -------------------------------------------------------
    weight_bits: int = 8
    weight_exp_min: int = -8
    weight_exp_max: int = 7
    delay_max_steps: int = 62
    graded_spike_bits: int = 0
    # --- neuron datapath --------------------------------------------------
    decay_bits: int = 12
    state_bits: int = 24
    act_shift: int = 6
    vth_bits: int = 17
    vth_shift: int = 6
    bias_bits: int = 13
    bias_exp_min: int = 0
    bias_exp_max: int = 7
    # --- rule set, refractory period, spike traces ----------------------------
    semantics: str = "lava"
    dendrite_bits: int = 32
    refract_delay_max: int = 63
    trace_bits: int = 7
    trace_decay_bits: int = 12
    # --- resources ----------------------------------------------------------
    neurons_per_core: int = 1024
    synapse_memory_bits_per_core: int = 1_048_576
    input_axons_per_core: int = 4096
    output_axons_per_core: int = 4096
    cores_per_chip: int = 128
    # --- energy / latency per operation (picojoules, nanoseconds) ----------
    energy_pj: Mapping[str, float] = field(default_factory=dict)
    latency_ns: Mapping[str, float] = field(default_factory=dict)
    # --- provenance -----------------------------------------------------------
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        positive = (
            "weight_bits", "decay_bits", "state_bits", "vth_bits", "bias_bits",
            "neurons_per_core", "synapse_memory_bits_per_core",
            "input_axons_per_core", "output_axons_per_core", "cores_per_chip",
            "dendrite_bits", "trace_bits", "trace_decay_bits",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(
                    f"profile '{self.name}': {name}={value!r} must be a positive integer"
                )
        if self.semantics not in SEMANTICS:
            raise ValidationError(
                f"profile '{self.name}': semantics={self.semantics!r} is not one of "
                f"{', '.join(SEMANTICS)}"
            )
        if self.dendrite_bits > 32 or self.trace_bits > 31 or self.trace_decay_bits > 31:
            raise ValidationError(
                f"profile '{self.name}': dendrite_bits<=32, trace_bits<=31 and "
                f"trace_decay_bits<=31 (dendrite_bits={self.dendrite_bits}, "
                f"trace_bits={self.trace_bits}, trace_decay_bits={self.trace_decay_bits})"
            )
        for name in ("delay_max_steps", "graded_spike_bits", "act_shift", "vth_shift",
                     "refract_delay_max"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValidationError(
                    f"profile '{self.name}': {name}={value!r} must be a non-negative integer"
                )
        if self.weight_bits > 15 or self.bias_bits > 31 or self.vth_bits + self.vth_shift > 62:
            raise ValidationError(
                f"profile '{self.name}': widths too large (weight_bits<=15, bias_bits<=31, "
                f"vth_bits+vth_shift<=62)"
            )
        if self.state_bits > 32:
            raise ValidationError(
                f"profile '{self.name}': state_bits={self.state_bits} exceeds 32 "
                f"(u and v are held in int32)"
            )
        for name in ("decay_bits", "act_shift"):  # shifts of int32 values inside int64
            if getattr(self, name) > 31:
                raise ValidationError(
                    f"profile '{self.name}': {name}={getattr(self, name)} exceeds 31 "
                    f"(the emulator shifts 32-bit state and input inside int64)"
                )
        for lo, hi in (("weight_exp_min", "weight_exp_max"), ("bias_exp_min", "bias_exp_max")):
            if getattr(self, lo) > getattr(self, hi):
                raise ValidationError(
                    f"profile '{self.name}': {lo}={getattr(self, lo)} > {hi}={getattr(self, hi)}"
                )
        if self.graded_spike_bits > 32:
            raise ValidationError(
                f"profile '{self.name}': graded_spike_bits={self.graded_spike_bits} exceeds 32"
            )

    # ------------------------------------------------------------------
    # integer ranges (inclusive) of every quantity the IR stores
    # ------------------------------------------------------------------
    def weight_range(self, sign_mode: str = "mixed") -> Tuple[int, int]:
        """Inclusive range of a weight mantissa for a sign mode.

        ``sign_mode`` is ``"mixed"``, ``"excitatory"`` or ``"inhibitory"``;
        the ranges are those Lava's ``clip_weights`` enforces.
        """
        top = 2**self.weight_bits - 1
        if sign_mode == "mixed":
            return (-(2**self.weight_bits), top)
        if sign_mode == "excitatory":
            return (0, top)
        if sign_mode == "inhibitory":
            return (-top, 0)
        raise ValidationError(
            f"sign_mode={sign_mode!r} is not one of 'mixed', 'excitatory', 'inhibitory'"
        )

    def range_of(self, param: str) -> Tuple[int, int]:
        """Inclusive integer range of a named parameter (``du``, ``vth``, ...)."""
        try:
            return self._ranges()[param]
        except KeyError:
            raise ValidationError(f"profile '{self.name}' has no range for {param!r}") from None

    def describe_range(self, param: str) -> str:
        """A short human description of a parameter's range, e.g. ``'12-bit unsigned'``."""
        return {
            "du": f"{self.decay_bits}-bit unsigned",
            "dv": f"{self.decay_bits}-bit unsigned",
            "vth": f"{self.vth_bits}-bit unsigned",
            "bias_mant": f"{self.bias_bits}-bit signed",
            "bias_exp": "bias exponent",
            "weight_exp": "weight exponent",
            "num_weight_bits": "weight precision",
            "delay": f"delay in steps, max {self.delay_max_steps}",
            "num_message_bits": "graded-spike payload bits",
            "u": f"{self.state_bits}-bit signed state",
            "v": f"{self.state_bits}-bit signed state",
            "refract_delay": f"refractory delay in steps, max {self.refract_delay_max}",
            "vmin": "lower voltage limit" + (" -(2**k)+1" if self.semantics == "loihi1" else ""),
            "vmax": "upper voltage limit" + (" 2**(9+2j)-1" if self.semantics == "loihi1"
                                             else ""),
            "trace_decay": f"{self.trace_decay_bits}-bit unsigned",
            "trace_impulse": f"{self.trace_bits}-bit unsigned",
        }.get(param, param)

    def _ranges(self) -> Dict[str, Tuple[int, int]]:
        state_max = 2 ** (self.state_bits - 1) - 1
        return {
            "du": (0, 2**self.decay_bits - 1),
            "dv": (0, 2**self.decay_bits - 1),
            "vth": (0, 2**self.vth_bits - 1),
            "bias_mant": (-(2 ** (self.bias_bits - 1)), 2 ** (self.bias_bits - 1) - 1),
            "bias_exp": (self.bias_exp_min, self.bias_exp_max),
            "weight_exp": (self.weight_exp_min, self.weight_exp_max),
            "num_weight_bits": (1, self.weight_bits),
            "delay": (0, self.delay_max_steps),
            "num_message_bits": (0, self.graded_spike_bits),
            "u": (-state_max, state_max),
            "v": (-state_max, state_max),
            "refract_delay": (0, self.refract_delay_max),
            "vmin": (-state_max, 0),
            "vmax": (0, state_max),
            "trace_decay": (0, 2**self.trace_decay_bits - 1),
            "trace_impulse": (0, 2**self.trace_bits - 1),
        }

    @property
    def max_neurons(self) -> int:
        """Neurons on one chip: ``neurons_per_core * cores_per_chip``."""
        return self.neurons_per_core * self.cores_per_chip

    # ------------------------------------------------------------------
    # serialisation (for the quantized-NIR graph metadata)
    # ------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """Every width and limit as plain Python values (no ``sources``)."""
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, Mapping) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "HardwareProfile":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ValidationError`."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationError(f"profile: unknown field(s) {', '.join(unknown)}")
        kwargs: Dict[str, Any] = {}
        for key, value in data.items():
            if key in ("energy_pj", "latency_ns"):
                kwargs[key] = {str(k): float(v) for k, v in dict(value).items()}
            elif key in ("name", "semantics"):
                kwargs[key] = str(value)
            else:
                try:
                    as_int = int(value)
                except (TypeError, ValueError):
                    raise ValidationError(f"profile: {key}={value!r} is not an integer") from None
                if as_int != value:
                    raise ValidationError(f"profile: {key}={value!r} is not an integer")
                kwargs[key] = as_int
        return cls(**kwargs)


_LOIHI1_SOURCES = {
    "weight_bits": "Davies et al. 2018, IEEE Micro 38(1) 'Loihi: A Neuromorphic Manycore "
    "Processor with On-Chip Learning', Sec. 'Architecture': 1-9 bit signed weights; "
    "Lava lava/utils/weightutils.py clip_weights(num_bits=8)",
    "weight_exp_min": "nengo-loihi nengo_loihi/builder/discretize.py (weight exponent range)",
    "weight_exp_max": "nengo-loihi nengo_loihi/builder/discretize.py (weight exponent range)",
    "delay_max_steps": "Lava lava/proc/dense/process.py DelayDense (max delay 62 steps, 6 bits)",
    "decay_bits": "Lava lava/proc/lif/models.py PyLifModelBitAcc: du, dv unsigned 12-bit",
    "state_bits": "Lava lava/proc/lif/models.py AbstractPyLifModelFixed: uv_bitwidth = 24",
    "act_shift": "Lava lava/proc/lif/models.py AbstractPyLifModelFixed: act_shift = 6",
    "vth_bits": "Lava lava/proc/lif/models.py PyLifModelBitAcc: vth unsigned 17-bit; "
    "nengo-loihi VTH_MAN_MAX = 2**17 - 1",
    "vth_shift": "Lava lava/proc/lif/models.py AbstractPyLifModelFixed: vth_shift = 6",
    "bias_bits": "Lava lava/proc/lif/models.py PyLifModelBitAcc: bias_mant signed 13-bit",
    "bias_exp_min": "Lava lava/proc/lif/models.py PyLifModelBitAcc: bias_exp unsigned 3-bit",
    "bias_exp_max": "Lava lava/proc/lif/models.py PyLifModelBitAcc: bias_exp unsigned 3-bit",
    "neurons_per_core": "Davies et al. 2018: 1,024 neural units (compartments) per core",
    "cores_per_chip": "Davies et al. 2018: 128 neuromorphic cores per chip",
    "synapse_memory_bits_per_core": "Davies et al. 2018: 2 Mb SRAM per core of which "
    "synaptic memory is 128 KB; nengo-loihi MAX_SYNAPSE_BITS = 16384 * 64",
    "input_axons_per_core": "nengo-loihi nengo_loihi/block.py MAX_IN_AXONS = 4096",
    "output_axons_per_core": "nengo-loihi nengo_loihi/block.py MAX_OUT_AXONS = 4096",
    "graded_spike_bits": "Davies et al. 2018: Loihi 1 spikes are binary",
    "semantics": "nengo-loihi 1.1.0 nengo_loihi/emulator/interface.py CompartmentState.update "
    "(an independent Loihi 1 emulator); rules in docs/loihi1.md",
    "dendrite_bits": "nengo-loihi nengo_loihi/builder/discretize.py Q_BITS = 21 (plus sign), "
    "applied to the dendritic accumulator in CompartmentState.update",
    "refract_delay_max": "nengo-loihi hardware/builder.py passes refract_delay to NxSDK "
    "cxProfileCfg.refractDelay; its width is not in the sources at hand, 6 bits assumed",
    "trace_bits": "Lava lava/magma/core/learning/constants.py W_TRACE = 7 (Loihi learning "
    "engine traces)",
    "trace_decay_bits": "Lava lava/proc/lif/models.py: 12-bit decays (du, dv); neurohw uses the "
    "same width for trace decays",
}

LOIHI1 = HardwareProfile(
    name="loihi1",
    weight_bits=8,
    weight_exp_min=-8,
    weight_exp_max=7,
    delay_max_steps=62,
    graded_spike_bits=0,
    decay_bits=12,
    state_bits=24,
    act_shift=6,
    vth_bits=17,
    vth_shift=6,
    bias_bits=13,
    bias_exp_min=0,
    bias_exp_max=7,
    neurons_per_core=1024,
    synapse_memory_bits_per_core=16384 * 64,
    input_axons_per_core=4096,
    output_axons_per_core=4096,
    cores_per_chip=128,
    semantics="loihi1",
    dendrite_bits=22,
    sources=_LOIHI1_SOURCES,
)
"""Intel Loihi 1 (14 nm, 2018): binary spikes, 128 cores of 1,024 compartments."""

_LOIHI2_SOURCES = dict(_LOIHI1_SOURCES)
_LOIHI2_SOURCES.update(
    {
        "semantics": "Lava 0.10 lava/proc/lif/models.py PyLifModelBitAcc and "
        "lava/proc/dense/models.py PyDenseModelBitAcc (docs/fixed-point.md)",
        "dendrite_bits": "Lava lava/proc/lif/models.py: a_in << act_shift held in int32",
        "graded_spike_bits": "Intel 2021, 'Taking Neuromorphic Computing to the Next Level "
        "with Loihi 2' (technology brief): graded spikes with up to 32-bit payload; Lava's "
        "fixed_pt models carry 24-bit payloads (s_out precision=24)",
        "neurons_per_core": "Intel 2021 Loihi 2 brief: up to 8,192 neurons per core",
        "cores_per_chip": "Intel 2021 Loihi 2 brief: 128 neuromorphic cores per chip",
        "synapse_memory_bits_per_core": "Intel 2021 Loihi 2 brief: 192 KB flexible memory per "
        "core, shared between synapses and neuron state",
    }
)

LOIHI2 = dataclasses.replace(
    LOIHI1,
    name="loihi2",
    graded_spike_bits=24,
    neurons_per_core=8192,
    synapse_memory_bits_per_core=192 * 1024 * 8,
    semantics="lava",
    dendrite_bits=32,
    sources=_LOIHI2_SOURCES,
)
"""Intel Loihi 2 (Intel 4, 2021): graded spikes, 128 cores of up to 8,192 neurons."""


LOIHI1_LAVA = dataclasses.replace(
    LOIHI1,
    name="loihi1_lava",
    semantics="lava",
    dendrite_bits=32,
    sources={**_LOIHI1_SOURCES, "semantics": _LOIHI2_SOURCES["semantics"],
             "dendrite_bits": _LOIHI2_SOURCES["dendrite_bits"]},
)
"""Loihi 1's widths and limits under Lava's fixed_pt rules (what ``loihi1`` computed
before it followed the chip): runs in Lava, so verification tests use it beside
``loihi2``.  Not in :data:`PROFILES`; files written with it carry its full spec."""


def generic(name: str = "generic", **widths: Any) -> HardwareProfile:
    """A user-defined integer LIF target.

    Starts from Lava's fixed-point datapath widths (the Loihi 2 profile, with
    bias exponents allowed in ``[-8, 7]`` since Lava's model implements a
    negative exponent as a right shift) and overrides any field given, e.g.
    ``generic(weight_bits=6, state_bits=16)``.  Unknown fields raise
    :class:`ValidationError`.
    """
    base = LOIHI2.to_dict()
    base.update({"name": name, "bias_exp_min": -8, "bias_exp_max": 7})
    known = set(base)
    unknown = sorted(set(widths) - known)
    if unknown:
        raise ValidationError(
            f"generic profile: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    base.update(widths)
    return HardwareProfile.from_dict(base)


PROFILES: Dict[str, HardwareProfile] = {"loihi1": LOIHI1, "loihi2": LOIHI2, "generic": generic()}
"""Named profiles, the registry the command line takes ``--profile`` choices from."""


def get_profile(name: str) -> HardwareProfile:
    """Look up a named profile (``'loihi1'``, ``'loihi2'``, ``'generic'``).

    Text of the form ``generic(field=value, ...)`` is parsed by
    :func:`parse_profile`.
    """
    if isinstance(name, HardwareProfile):
        return name
    if isinstance(name, str) and "(" in name:
        return parse_profile(name)
    try:
        return PROFILES[str(name).lower()]
    except KeyError:
        raise ValidationError(
            f"unknown profile {name!r}; choose one of {', '.join(sorted(PROFILES))}"
        ) from None


_INT_FIELDS = tuple(
    f.name for f in dataclasses.fields(HardwareProfile)
    if f.name not in ("name", "semantics", "energy_pj", "latency_ns", "sources")
)


def parse_profile(text: str) -> HardwareProfile:
    """A profile from command-line text: a registry name or ``generic(field=value, ...)``.

    ``"loihi2"`` looks the name up in :data:`PROFILES`;
    ``"generic(act_shift=5, decay_bits=10)"`` builds :func:`generic` with those
    integer fields (decimal integers, optionally signed; spaces ignored).  No
    Python is evaluated.  Anything else raises a one-line
    :class:`ValidationError` naming the offending part and what is allowed.
    """
    if isinstance(text, HardwareProfile):
        return text
    s = str(text).strip()
    if "(" not in s and ")" not in s:
        return get_profile(s)
    head, sep, rest = s.partition("(")
    head = head.strip().lower()
    if head != "generic" or not rest.endswith(")"):
        raise ValidationError(
            f"profile {text!r}: expected a name ({', '.join(sorted(PROFILES))}) or "
            f"generic(field=value, ...)"
        )
    body = rest[:-1].strip()
    fields: Dict[str, int] = {}
    for item in (body.split(",") if body else []):
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not key:
            raise ValidationError(f"profile {text!r}: {item.strip()!r} is not field=value")
        if key not in _INT_FIELDS:
            raise ValidationError(
                f"profile {text!r}: unknown field {key!r}; known: {', '.join(_INT_FIELDS)}"
            )
        digits = value[1:] if value[:1] in "+-" else value
        if not digits.isdigit() or not digits.isascii():
            raise ValidationError(f"profile {text!r}: {key}={value!r} is not an integer")
        if key in fields:
            raise ValidationError(f"profile {text!r}: {key} is given twice")
        fields[key] = int(value)
    if not fields:
        return generic()
    name = "generic(" + ",".join(f"{k}={v}" for k, v in fields.items()) + ")"
    return generic(name, **fields)
