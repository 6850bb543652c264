"""Run the emulator and Lava's bit-accurate simulator (Loihi2SimCfg, fixed_pt)
on the same input and compare spikes, v and u at every step. Prints
"bit-exact" with a summary, or the first divergence (step, node, sample,
neuron, variable, expected vs got, last equal step). Exit 0 only when
bit-exact, 1 on a divergence, 2 on bad input or a profile whose datapath
Lava's fixed_pt models do not compute (docs/export-lava.md)."""

from __future__ import annotations

import sys

from ..backends.lava.graph import check_lava_profile
from ..errors import ValidationError
from ..verify import verify_against_lava
from ._common import load_input, load_model

HELP = "compare the emulator with Lava fixed_pt, bit for bit"


def add_args(p) -> None:
    p.add_argument("model", metavar="MODEL.nir", help="quantized NIR file")
    p.add_argument("--input", required=True, metavar="X.npy[:KEY]",
                   help="integer spikes (T, n_in) or (B, T, n_in), or image-shaped (B, T, C, H, W) "
                        "flattened row-major; FILE.npz:KEY picks one array of an archive")
    p.add_argument("--progress", action="store_true", help="show a progress bar")


def run(args) -> int:
    net = load_model(args.model)
    try:
        check_lava_profile(net.profile)  # before the emulator runs
    except ValidationError as exc:
        raise ValidationError(f"{args.model}: {exc}") from None
    x = load_input(args.input, net)
    result = verify_against_lava(net, x, progress=args.progress or sys.stderr.isatty(),
                                 source=str(args.input))
    print(f"{args.model}: {result.describe()}")
    return 0 if result.bit_exact else 1
