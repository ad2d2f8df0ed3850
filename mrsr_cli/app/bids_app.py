"""The BIDS App: ``mrsr-bids BIDS_DIR OUTPUT_DIR participant`` super-resolves a dataset's anatomical images.

The standard BIDS App arguments (Gorgolewski et al. 2017; as fMRIPrep takes them): the raw dataset,
the output folder (a derivative dataset: ``dataset_description.json`` with ``DatasetLinks.raw``, one
``sub-*/[ses-*/]anat/*_desc-superres_<suffix>.nii.gz`` and JSON sidecar per input image), the analysis
level (``participant``: each image on its own), ``--participant-label`` to choose subjects, and
``--n-procs`` for Nipype's MultiProc scheduler (one node per image; each node a ``mrsr upscale``
process with ``--threads``).  ``--plugin SLURM`` submits each node as a job instead
(docs/cluster.md).  Errors are one line with exit code 1 (runtime) or 2 (usage), as ``mrsr``'s.

Example::

    mrsr-bids /data/bids /data/derivatives/mrsr participant --participant-label 01 02 --n-procs 4 --factor 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ANALYSIS_LEVELS = ("participant",)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mrsr-bids", description="Super-resolve the anatomical images of a BIDS dataset "
                                "with mrsr (a BIDS App).")
    p.add_argument("bids_dir", type=Path, help="The raw BIDS dataset (holds dataset_description.json).")
    p.add_argument("output_dir", type=Path, help="The derivative dataset to write (created if missing).")
    p.add_argument("analysis_level", choices=ANALYSIS_LEVELS, help="participant: every image on its own.")
    p.add_argument("--participant-label", "--participant_label", nargs="+", metavar="LABEL",
                   help="Subjects to process (with or without 'sub-'); default: all.")
    p.add_argument("--suffix", default="T1w", help="Images to super-resolve: sub-*/[ses-*/]anat/*_SUFFIX.nii[.gz].")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--factor", default=None, help="Output voxel = input voxel / F: '2' or '2,2,3' (default 2).")
    size.add_argument("--voxel-size", default=None, help="Output voxel size in mm: '1' or '1,1,1'.")
    p.add_argument("--method", default="cnn", choices=("cnn", "spline"))
    p.add_argument("--model", help="Model name or .safetensors path (default: the builtin one).")
    p.add_argument("--n-procs", "--n_procs", type=int, default=1, metavar="N", help="Images processed at once (MultiProc).")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="CPU threads per image.")
    p.add_argument("--use-gpu", action="store_true", help="Run each node with --device cuda.")
    p.add_argument("--plugin", default="MultiProc", help="Nipype plugin: MultiProc (default), Linear, SLURM, ...")
    p.add_argument("--plugin-args", default="{}", metavar="JSON", help="Nipype plugin arguments, e.g. "
                   "'{\"sbatch_args\": \"-p gpu\"}'.")
    p.add_argument("-w", "--work-dir", type=Path, help="Nipype's working folder (default: OUTPUT_DIR/work).")
    return p


def main(argv=None) -> int:
    from mrsr_cli.data.geometry import parse_factor, parse_voxel_size
    from mrsr_cli.errors import MrsrError, UsageError

    args = parser().parse_args(argv)  # argparse: usage errors exit 2 with one line and the usage
    try:
        if not (args.bids_dir / "dataset_description.json").is_file():
            raise UsageError(f"{args.bids_dir} is not a BIDS dataset (no dataset_description.json)")
        if args.output_dir.resolve() == args.bids_dir.resolve():
            raise UsageError("OUTPUT_DIR must not be BIDS_DIR: derivatives go to their own dataset")
        if args.n_procs < 1 or args.threads < 1:
            raise UsageError("--n-procs and --threads must be at least 1")
        try:
            plugin_args = json.loads(args.plugin_args)
        except ValueError:
            raise UsageError(f"--plugin-args is not JSON: {args.plugin_args}") from None
        factor = parse_factor(args.factor) if args.factor else (2.0, 2.0, 2.0)
        voxel_size = parse_voxel_size(args.voxel_size) if args.voxel_size else None
        from mrsr_cli.app.workflows import build_workflow

        try:
            workflow = build_workflow(args.bids_dir, suffix=args.suffix, factor=factor, voxel_size=voxel_size,
                                      method=args.method, model=args.model, base_dir=args.work_dir,
                                      num_threads=args.threads, use_gpu=args.use_gpu, output_dir=args.output_dir,
                                      participants=args.participant_label)
        except ValueError as exc:
            raise MrsrError(str(exc)) from None
        if args.plugin == "MultiProc":
            plugin_args.setdefault("n_procs", args.n_procs)
        try:
            workflow.run(plugin=args.plugin, plugin_args=plugin_args)
        except RuntimeError as exc:  # Nipype: "Workflow did not execute cleanly"; each node's crash file says why
            raise MrsrError(f"{str(exc).splitlines()[0]} (see the crash files under {workflow.base_dir})") from None
    except UsageError as exc:
        sys.stderr.write(f"mrsr-bids: error: {exc}\n")
        return 2
    except MrsrError as exc:
        sys.stderr.write(f"mrsr-bids: error: {exc}\n")
        return 1
    sys.stderr.write(f"mrsr-bids: wrote {args.output_dir}\n")
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
