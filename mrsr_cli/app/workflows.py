"""The Nipype workflow behind the BIDS App (:mod:`mrsr_cli.app.bids_app`, ``mrsr-bids``): super-resolve every
``*_<suffix>.nii[.gz]`` of a BIDS dataset, one :class:`~mrsr_cli.app.interfaces.Upscale` node per image.

Outputs go to ``<output_dir>/sub-*/[ses-*/]anat/<entities>_desc-superres_<suffix>.nii.gz`` (default
output folder ``<bids>/derivatives/mrsr``) with JSON sidecars whose ``Sources`` are BIDS URIs into the
raw dataset, and a ``dataset_description.json`` linking it (written by ``mrsr upscale`` itself).

    wf = build_workflow("/data/bids", output_dir="/data/derivatives/mrsr", participants=["01"])
    wf.run(plugin="MultiProc", plugin_args={"n_procs": 4})
"""

from __future__ import annotations

import re
from pathlib import Path


def find_images(bids_dir, suffix: str = "T1w", participants=None) -> list[Path]:
    """All ``sub-*/[ses-*/]anat/*_<suffix>.nii[.gz]`` files of a BIDS dataset, sorted; only those of
    ``participants`` (labels, with or without ``sub-``) when given."""
    root = Path(bids_dir)
    subjects = ["sub-" + p.removeprefix("sub-") for p in participants] if participants else ["sub-*"]
    found = []
    for subject in subjects:
        for pattern in (f"{subject}/anat/*_{suffix}.nii*", f"{subject}/ses-*/anat/*_{suffix}.nii*"):
            found += [p for p in root.glob(pattern) if p.name.endswith((".nii", ".nii.gz"))]
    return sorted(set(found))


def derivative_path(image: Path, bids_dir, pipeline: str = "mrsr", desc: str = "superres", output_dir=None) -> Path:
    """BIDS derivative name: the ``desc`` entity goes just before the suffix; under ``output_dir``
    (default ``<bids_dir>/derivatives/<pipeline>``)."""
    rel = image.relative_to(bids_dir)
    name = image.name
    ext = ".nii.gz" if name.endswith(".nii.gz") else ".nii"
    stem = name[: -len(ext)]
    entities, suffix = stem.rsplit("_", 1)
    entities = re.sub(r"_desc-[^_]+", "", entities)
    root = Path(output_dir) if output_dir is not None else Path(bids_dir) / "derivatives" / pipeline
    return root / rel.parent / f"{entities}_desc-{desc}_{suffix}{ext}"


def build_workflow(bids_dir, *, suffix: str = "T1w", factor=(2.0, 2.0, 2.0), voxel_size=None, method: str = "cnn",
                   model: str | None = None, base_dir=None, num_threads: int = 1, use_gpu: bool = False,
                   name: str = "mrsr_bids", output_dir=None, participants=None):
    """One :class:`~mrsr_cli.app.interfaces.Upscale` node per image, writing straight to the derivative folder
    (``output_dir``, default ``<bids_dir>/derivatives/mrsr``); ``voxel_size`` (mm) instead of ``factor``."""
    from nipype import Node, Workflow

    from mrsr_cli.app.interfaces import Upscale
    from mrsr_cli.data.bids import describe_derivative

    bids_dir = Path(bids_dir).resolve()
    output_dir = Path(output_dir).resolve() if output_dir is not None else bids_dir / "derivatives" / "mrsr"
    images = find_images(bids_dir, suffix, participants)
    if not images:
        who = f" of participant(s) {', '.join(participants)}" if participants else ""
        raise ValueError(f"no *_{suffix}.nii[.gz] images{who} under {bids_dir}")
    output_dir.mkdir(parents=True, exist_ok=True)
    describe_derivative(output_dir, bids_dir)  # before any node runs: the nodes' sidecars find and link it
    wf = Workflow(name=name, base_dir=str(base_dir or output_dir / "work"))
    for i, image in enumerate(images):
        out = derivative_path(image, bids_dir, output_dir=output_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        size = {"voxel_size": list(voxel_size)} if voxel_size is not None else {"factor": list(factor)}
        node = Node(Upscale(in_file=str(image), out_file=str(out), method=method, num_threads=num_threads,
                            use_gpu=use_gpu, **size),
                    name=f"upscale_{i:04d}_{re.sub(r'[^A-Za-z0-9]', '_', image.name.split('.')[0])}")
        if model:
            node.inputs.model = model
        wf.add_nodes([node])
    return wf
