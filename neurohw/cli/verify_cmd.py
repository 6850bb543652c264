"""Run the emulator and a reference simulator on the same input and compare spikes,
v and u at every step: Lava's bit-accurate simulator (Loihi2SimCfg, fixed_pt;
--against lava, the default) or nengo-loihi 1.1.0's Loihi 1 emulator (--against
nengo-loihi, loihi1 profile, docs/loihi1.md). Prints "bit-exact" with a summary,
or the first divergence (step, node, sample, neuron, variable, expected vs got,
last equal step). Exit 0 only when bit-exact, 1 on a divergence, 2 on bad input,
on a network or profile the reference cannot run (docs/export-lava.md,
docs/loihi1.md), or when nengo-loihi is not installed."""

from __future__ import annotations

import sys

from ..errors import ValidationError
from ._common import load_input, load_model

HELP = "compare the emulator with Lava fixed_pt (or nengo-loihi), bit for bit"


def add_args(p) -> None:
    p.add_argument("model", metavar="MODEL.nir", help="quantized NIR file")
    p.add_argument("--input", required=True, metavar="X.npy[:KEY]",
                   help="integer spikes (T, n_in) or (B, T, n_in), or image-shaped (B, T, C, H, W) "
                        "flattened row-major; FILE.npz:KEY picks one array of an archive")
    p.add_argument("--against", choices=("lava", "nengo-loihi"), default="lava",
                   help="reference simulator: Lava fixed_pt (default; loihi2/generic profiles) or "
                        "nengo-loihi 1.1.0's emulator (loihi1 profile, Dense/Sparse -> LIF, "
                        "no delays)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")


def run(args) -> int:
    net = load_model(args.model)
    progress = args.progress or sys.stderr.isatty()
    if args.against == "nengo-loihi":
        from ..backends.nengo_loihi import check_nengo_loihi, require_nengo_loihi
        from ..verify import verify_against_nengo_loihi as verify

        try:
            check_nengo_loihi(net)  # before the emulator runs
        except ValidationError as exc:
            raise ValidationError(f"{args.model}: {exc}") from None
        require_nengo_loihi()
    else:
        from ..backends.lava.graph import check_lava_profile
        from ..verify import verify_against_lava as verify

        try:
            check_lava_profile(net.profile)  # before the emulator runs
        except ValidationError as exc:
            raise ValidationError(f"{args.model}: {exc}") from None
    x = load_input(args.input, net)
    result = verify(net, x, progress=progress, source=str(args.input))
    print(f"{args.model}: {result.describe()}")
    return 0 if result.bit_exact else 1
