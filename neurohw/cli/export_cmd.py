"""Export a quantized network to the tool that runs it:

  lava  a directory with run_lava.py + weights.npz: a standalone script that
        needs only lava-nc and numpy and runs the network on Lava's
        Loihi2SimCfg fixed_pt, bit-exact with 'neurohw emulate'
        (same --input/--out layout; docs/export-lava.md);
  netx  a lava-dl netx HDF5 file (lava.lib.dl.netx.hdf5.Network);
  nir   the quantized NIR again (float fields = dequantized values), or with
        --flavor snntorch|norse a float NIR those importers read right
        (docs/export-lava.md, "NIR in snnTorch and Norse").

Outputs are written under a temporary name and renamed into place."""

from __future__ import annotations

from pathlib import Path

from ..errors import ValidationError, FileFormatError
from ..fileio import atomic_write
from ._common import ensure_parent, load_model

HELP = "export a quantized network (Lava script, lava-dl netx HDF5, NIR)"
TARGETS = ("lava", "netx", "nir")


def add_args(p) -> None:
    p.add_argument("model", metavar="MODEL.q.nir", help="quantized NIR file")
    p.add_argument("--to", required=True, choices=TARGETS, help="export target")
    p.add_argument("-o", "--output", required=True, metavar="PATH",
                   help="output directory (lava) or file (netx, nir)")
    p.add_argument("--flavor", default="neurohw", choices=("neurohw", "snntorch", "norse"),
                   help="for --to nir: neurohw = quantized NIR (default); snntorch/norse = "
                        "float NIR for that importer")
    p.add_argument("--force", action="store_true",
                   help="replace an existing non-empty output directory (lava)")


def run(args) -> int:
    net = load_model(args.model)
    out = Path(args.output)
    if args.to in ("lava", "netx"):
        from ..backends.lava.graph import check_lava_profile

        try:
            check_lava_profile(net.profile)  # before any output (or its directory) exists
        except ValidationError as exc:
            raise ValidationError(f"{args.model}: {exc}") from None
    ensure_parent(out)  # missing parent directories are created (docs/cli.md)
    if args.to == "lava":
        from ..export.lava_script import export_lava_script

        export_lava_script(net, out, overwrite=args.force)
        what = f"Lava script directory (run: python {out / 'run_lava.py'} --input X.npy --out RUN.npz)"
    elif args.to == "netx":
        from ..export import export_netx  # MissingDependencyError (exit 2) if not available

        from ..export.netx import check_netx_structure

        if out.is_dir():
            raise FileFormatError(f"{out}: is a directory")
        try:  # a structure netx has no layers for: no re-quantization helps
            check_netx_structure(net)
        except ValidationError as exc:
            raise ValidationError(
                f"{args.model}: {exc} -- export it with '--to lava' (a standalone Lava script) "
                f"or '--to nir'") from None
        try:
            atomic_write(out, lambda tmp: export_netx(net, tmp))
        except ValidationError as exc:
            raise ValidationError(
                f"{args.model}: {exc} -- re-quantize with 'neurohw quantize --target netx' for a "
                f"network netx holds exactly") from None
        what = "lava-dl netx HDF5"
    else:
        from ..export.nir import export_nir

        try:
            export_nir(net, out, flavor=args.flavor)
        except ValidationError as exc:
            raise ValidationError(f"{args.model}: {exc}") from None
        what = "quantized NIR" if args.flavor == "neurohw" else f"float NIR for {args.flavor}"
    print(f"{out}: {what}; {len(net.populations)} populations, {net.num_neurons} neurons, "
          f"{net.num_synapses} synapses")
    return 0
