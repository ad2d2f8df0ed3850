"""Example Nipype workflow: super-resolve every ``*_<suffix>.nii.gz`` of a BIDS dataset.

Outputs go to ``<bids>/derivatives/mrsr/sub-*/[ses-*/]anat/<entities>_desc-superres_<suffix>.nii.gz``
with JSON sidecars and a ``dataset_description.json`` (written by ``mrsr upscale`` itself).

Run locally or on a cluster (one node per image; Nipype schedules them)::

    python -m mrsr_cli.app.workflows /data/bids --factor 2 --plugin MultiProc --n-procs 4
    python -m mrsr_cli.app.workflows /data/bids --plugin SLURM --plugin-args '{"sbatch_args": "-p gpu --gres=gpu:1"}' --use-gpu
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path


def find_images(bids_dir, suffix: str = "T1w") -> list[Path]:
    """All ``sub-*/[ses-*/]anat/*_<suffix>.nii[.gz]`` files of a BIDS dataset, sorted."""
    root = Path(bids_dir)
    found = []
    for pattern in (f"sub-*/anat/*_{suffix}.nii*", f"sub-*/ses-*/anat/*_{suffix}.nii*"):
        found += [p for p in root.glob(pattern) if p.name.endswith((".nii", ".nii.gz"))]
    return sorted(found)


def derivative_path(image: Path, bids_dir, pipeline: str = "mrsr", desc: str = "superres") -> Path:
    """BIDS derivative name: the ``desc`` entity goes just before the suffix."""
    rel = image.relative_to(bids_dir)
    name = image.name
    ext = ".nii.gz" if name.endswith(".nii.gz") else ".nii"
    stem = name[: -len(ext)]
    entities, suffix = stem.rsplit("_", 1)
    entities = re.sub(r"_desc-[^_]+", "", entities)
    return Path(bids_dir) / "derivatives" / pipeline / rel.parent / f"{entities}_desc-{desc}_{suffix}{ext}"


def build_workflow(bids_dir, *, suffix: str = "T1w", factor=(2.0, 2.0, 2.0), method: str = "cnn", model: str | None = None,
                   base_dir=None, num_threads: int = 1, use_gpu: bool = False, name: str = "mrsr_bids"):
    """One :class:`~mrsr_cli.app.interfaces.Upscale` node per image, writing straight to derivatives."""
    from nipype import Node, Workflow

    from mrsr_cli.app.interfaces import Upscale

    bids_dir = Path(bids_dir).resolve()
    images = find_images(bids_dir, suffix)
    if not images:
        raise ValueError(f"no *_{suffix}.nii[.gz] images under {bids_dir}")
    wf = Workflow(name=name, base_dir=str(base_dir or bids_dir / "derivatives" / "mrsr" / "work"))
    for i, image in enumerate(images):
        out = derivative_path(image, bids_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        node = Node(Upscale(in_file=str(image), out_file=str(out), factor=list(factor), method=method,
                            num_threads=num_threads, use_gpu=use_gpu), name=f"upscale_{i:04d}_{re.sub(r'[^A-Za-z0-9]', '_', image.name.split('.')[0])}")
        if model:
            node.inputs.model = model
        wf.add_nodes([node])
    return wf


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Super-resolve every image of a BIDS dataset with mrsr.")
    parser.add_argument("bids_dir")
    parser.add_argument("--suffix", default="T1w")
    parser.add_argument("--factor", default="2", help="'2' or '2,2,3'")
    parser.add_argument("--method", default="cnn", choices=["cnn", "spline"])
    parser.add_argument("--model")
    parser.add_argument("--plugin", default="MultiProc", help="Linear, MultiProc, SLURM, ...")
    parser.add_argument("--plugin-args", default="{}", help="JSON, e.g. '{\"n_procs\": 4}'")
    parser.add_argument("--n-procs", type=int)
    parser.add_argument("--threads", type=int, default=1, help="threads per node")
    parser.add_argument("--use-gpu", action="store_true")
    parser.add_argument("--work-dir")
    args = parser.parse_args(argv)
    from mrsr_cli.data.geometry import parse_factor

    wf = build_workflow(args.bids_dir, suffix=args.suffix, factor=parse_factor(args.factor), method=args.method,
                        model=args.model, base_dir=args.work_dir, num_threads=args.threads, use_gpu=args.use_gpu)
    plugin_args = json.loads(args.plugin_args)
    if args.n_procs:
        plugin_args["n_procs"] = args.n_procs
    wf.run(plugin=args.plugin, plugin_args=plugin_args)


if __name__ == "__main__":
    main()
