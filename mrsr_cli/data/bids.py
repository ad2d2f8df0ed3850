"""BIDS-derivative provenance: JSON sidecars, ``dataset_description.json`` and BIDS file names.

Every image mrsr writes gets a sidecar with the same stem (``x.nii.gz`` → ``x.json``)
holding ``Sources``, the software version and what the command did.  When the output lies in
a derivative dataset (under ``.../derivatives/<name>/``, or in a folder whose
``dataset_description.json`` says ``DatasetType: derivative``), a ``dataset_description.json``
is written there if missing (``DatasetType: derivative``, ``GeneratedBy``).  A source inside a
raw BIDS dataset is named by a BIDS URI, ``bids:raw:sub-01/anat/sub-01_T1w.nii.gz``, and the
derivative's description links ``raw`` to that dataset (``DatasetLinks``), as fMRIPrep does.

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


def _description(folder: Path) -> dict | None:
    """``folder``'s ``dataset_description.json``: ``None`` when missing, ``{}`` when unreadable."""
    import json

    desc = folder / "dataset_description.json"
    if not desc.exists():
        return None
    try:
        return json.loads(desc.read_text())
    except (OSError, ValueError):
        return {}


def raw_dataset(path) -> Path | None:
    """The raw BIDS dataset holding ``path``: the nearest folder above it with a
    ``dataset_description.json`` that is not a derivative."""
    for parent in Path(path).resolve().parents:
        description = _description(parent)
        if description is not None:
            raw = bool(description) and description.get("DatasetType", "raw") == "raw"
            return parent if raw and parent.parent.name != "derivatives" else None
    return None


def derivative_root(path) -> Path | None:
    """The derivative dataset an output lies in: ``derivatives/<name>/`` above it, or the nearest
    folder above it whose description says ``DatasetType: derivative`` (a BIDS App's output folder)."""
    for parent in Path(path).resolve().parents:
        if parent.parent.name == "derivatives":
            return parent
        description = _description(parent)
        if description is not None:
            return parent if description.get("DatasetType") == "derivative" else None
    return None


def _source_uri(path, derivative: Path | None) -> str:
    """A source as a BIDS URI ``bids:raw:<relative path>`` when it lies in a raw dataset and the output in
    the ``derivative`` dataset, linked to it (:func:`describe_derivative`); else its path."""
    path = Path(path).resolve()
    raw = raw_dataset(path)
    if raw is not None and derivative is not None:
        describe_derivative(derivative, raw)
        link = (_description(derivative) or {}).get("DatasetLinks", {}).get("raw", "")
        if link.startswith(("file://", "/")) and Path(link.removeprefix("file://")).resolve() == raw:
            return f"bids:raw:{path.relative_to(raw).as_posix()}"
    return str(path)


def write_sidecar(out_path, payload: dict, sources=(), to=None) -> Path:
    """Write the JSON sidecar of ``out_path`` (to the file ``to`` when given: a temporary name of
    an :func:`~mrsr_cli.data.io.output_set`) and the description of the derivative dataset it lies
    in, if any, when due."""
    derivative = derivative_root(out_path)
    if derivative is not None:
        describe_derivative(derivative)
    body = {"Sources": [_source_uri(s, derivative) for s in sources if s is not None], "SoftwareName": "mrsr",
            "SoftwareVersion": __version__}
    container = container_info()
    if container:
        body["Container"] = container
    body.update(payload)
    return write_json(to or sidecar_path(out_path), body)


def describe_derivative(root: Path, raw: Path | None = None) -> Path:
    """Create ``root/dataset_description.json`` (a derivative dataset) if missing; with ``raw``, link it
    as ``DatasetLinks.raw`` (and ``SourceDatasets``) unless a raw dataset is linked already."""
    import json

    desc = Path(root) / "dataset_description.json"
    body = json.loads(desc.read_text()) if desc.exists() else None
    if body is None:
        generated = {"Name": "mrsr", "Version": __version__, "CodeURL": "https://pypi.org/project/mrsr-cli/"}
        container = container_info()
        if container:
            generated["Container"] = container
        body = {"Name": "mrsr super-resolution", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
                "GeneratedBy": [generated]}
    elif raw is None or "raw" in body.get("DatasetLinks", {}):
        return desc
    if raw is not None and "raw" not in body.get("DatasetLinks", {}):
        body.setdefault("DatasetLinks", {})["raw"] = Path(raw).resolve().as_uri()
        body.setdefault("SourceDatasets", []).append({"URL": Path(raw).resolve().as_uri()})
    return write_json(desc, body)


def bids_name(path) -> Path:
    """Move an entity that a name template appended after the suffix back before it, as BIDS wants:
    ``sub-01_T1w_desc-superres.nii.gz`` → ``sub-01_desc-superres_T1w.nii.gz``.  Other names are kept.

    >>> bids_name("out/sub-01_ses-a_T1w_desc-superres.nii.gz").name
    'sub-01_ses-a_desc-superres_T1w.nii.gz'
    >>> bids_name("brain_desc-superres.nii.gz").name
    'brain_desc-superres.nii.gz'
    """
    import re

    path = Path(path)
    match = re.fullmatch(r"(sub-[^_]+(?:_[^_]+-[^_]+)*)_([A-Za-z0-9]+)_([a-z]+-[A-Za-z0-9]+)(\.nii\.gz|\.nii|\.mgz)", path.name)
    if not match:
        return path
    entities, suffix, added, ext = match.groups()
    return path.with_name(f"{entities}_{added}_{suffix}{ext}")


# BIDS anatomical suffixes (BIDS 1.9, "anat"): the last entity of a file name says its contrast.
BIDS_CONTRASTS = ("T1w", "T2w", "PDw", "T2starw", "FLAIR", "inplaneT1", "inplaneT2", "PDT2", "angio", "T1map", "T2map",
                  "T2starmap", "R1map", "R2map", "PDmap", "UNIT1", "MTRmap", "M0map", "MP2RAGE")


def bids_contrast(path) -> str | None:
    """The BIDS contrast suffix of an image's file name (``sub-01_T2w.nii.gz`` → ``T2w``), or ``None``.

    >>> bids_contrast("sub-01_ses-2_FLAIR.mgz"), bids_contrast("brain.nii")
    ('FLAIR', None)
    """
    import re

    stem = re.sub(r"\.(nii(\.gz)?|mgz|mgh)$", "", Path(path).name)
    suffix = stem.rsplit("_", 1)[-1] if "_" in stem else ""
    return suffix if suffix in BIDS_CONTRASTS else None


def _entities_and_suffix(name: str) -> tuple[dict, str] | None:
    """``({entity: label}, suffix)`` of a BIDS file name (any extension), or ``None`` if it is not one.

    >>> _entities_and_suffix("sub-01_ses-a_T1w.nii.gz")
    ({'sub': '01', 'ses': 'a'}, 'T1w')
    >>> _entities_and_suffix("T1w.json"), _entities_and_suffix("brain.nii")
    (({}, 'T1w'), None)
    """
    parts = name.split(".")[0].split("_")
    pairs = [part.split("-", 1) for part in parts[:-1]]
    if not parts[-1] or "-" in parts[-1] or any(len(pair) != 2 or not all(pair) for pair in pairs):
        return None
    if not pairs and parts[-1] not in BIDS_CONTRASTS:  # a bare "brain.nii" is no BIDS name
        return None
    return dict(pairs), parts[-1]


def _read_json_object(path: Path) -> dict | None:
    """A JSON file's object; ``None``, with one warning, when it is not readable JSON or not an object."""
    import json
    import logging

    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        logging.getLogger("mrsr").warning("ignoring the input's sidecar %s: not readable JSON (%s)", path, exc)
        return None
    return content if isinstance(content, dict) else None


def input_sidecar(path) -> dict | None:
    """The metadata of an input image from its JSON sidecars; ``None`` when it has none.

    Inside a raw BIDS dataset this follows the BIDS inheritance principle. Every ``.json`` from
    the dataset root down to the image's folder applies when it has the image's suffix and a
    subset of its entities (``T1w.json`` at the root, ``sub-01/anat/sub-01_T1w.json``). Deeper
    and more specific files override. Elsewhere only the same-stem file applies (``x.nii.gz`` →
    ``x.json``, as dcm2niix writes it). A sidecar is optional: an unreadable one is skipped with
    one warning and is never an error."""
    path = Path(path)
    root, parsed = raw_dataset(path), _entities_and_suffix(path.name)
    if root is None or parsed is None:
        own = sidecar_path(path)
        return _read_json_object(own) if own.is_file() else None
    entities, suffix = parsed
    folders = [path.parent.resolve()]
    while folders[-1] != root and folders[-1] != folders[-1].parent:
        folders.append(folders[-1].parent)
    merged, found = {}, False
    for folder in reversed(folders):  # from the root down
        applicable = []
        for candidate in folder.glob(f"*{suffix}.json"):
            meta = _entities_and_suffix(candidate.name)
            if meta and meta[1] == suffix and meta[0].items() <= entities.items():
                applicable.append((len(meta[0]), candidate.name, candidate))
        for _, _, candidate in sorted(applicable):  # the more entities, the later (it overrides)
            content = _read_json_object(candidate)
            if content is not None:
                merged.update(content)
                found = True
    return merged if found else None
