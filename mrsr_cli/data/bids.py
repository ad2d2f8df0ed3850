"""BIDS-derivative provenance: JSON sidecars and ``dataset_description.json``.

Every image mrsr writes gets a sidecar with the same stem (``x.nii.gz`` → ``x.json``)
holding ``Sources``, the software version and what the command did.  When the output lies
under ``.../derivatives/<name>/``, a ``dataset_description.json`` is written at
``derivatives/<name>/`` if missing (``DatasetType: derivative``, ``GeneratedBy``).

Example::

    write_sidecar("derivatives/mrsr/sub-01/anat/sub-01_desc-superres_T1w.nii.gz",
                  {"Factor": [2, 2, 2]}, sources=["sub-01/anat/sub-01_T1w.nii.gz"])
"""

from __future__ import annotations

import os
from pathlib import Path

from mrsr_cli import __version__
from mrsr_cli.data.io import sidecar_path, write_json


def container_info() -> dict | None:
    """Describe the container we run in, if any (Apptainer/Singularity or Docker)."""
    if os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER"):
        return {"Type": "apptainer", "Tag": os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")}
    if os.environ.get("MRSR_CONTAINER"):  # set by containers/Dockerfile
        return {"Type": "docker", "Tag": os.environ["MRSR_CONTAINER"]}
    return None


def _source_uri(path) -> str:
    """A BIDS-style source reference: relative to the dataset root when inside one."""
    path = Path(path).resolve()
    for parent in path.parents:
        if (parent / "dataset_description.json").exists() and parent.name != "derivatives":
            return f"bids::{path.relative_to(parent).as_posix()}"
    return str(path)


def write_sidecar(out_path, payload: dict, sources=(), to=None) -> Path:
    """Write the JSON sidecar of ``out_path`` (to the file ``to`` when given: a temporary name of
    an :func:`~mrsr_cli.data.io.output_set`) and the derivative description when due."""
    body = {"Sources": [_source_uri(s) for s in sources if s is not None], "SoftwareName": "mrsr", "SoftwareVersion": __version__}
    container = container_info()
    if container:
        body["Container"] = container
    body.update(payload)
    path = write_json(to or sidecar_path(out_path), body)
    ensure_dataset_description(out_path)
    return path


def ensure_dataset_description(out_path) -> Path | None:
    """Create ``derivatives/<name>/dataset_description.json`` above ``out_path`` if missing."""
    out_path = Path(out_path).resolve()
    for parent in out_path.parents:
        if parent.parent.name == "derivatives":
            desc = parent / "dataset_description.json"
            if desc.exists():
                return desc
            generated = {"Name": "mrsr", "Version": __version__, "CodeURL": "https://pypi.org/project/mrsr-cli/"}
            container = container_info()
            if container:
                generated["Container"] = container
            return write_json(desc, {
                "Name": f"{parent.name} (mrsr super-resolution)",
                "BIDSVersion": "1.9.0",
                "DatasetType": "derivative",
                "GeneratedBy": [generated],
            })
    return None
