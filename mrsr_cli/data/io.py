"""NIfTI reading and writing with explicit, honest headers.

* :func:`load_volume` returns float32 data (scl_slope/inter applied), the affine nibabel
  chose (sform when its code is set, else qform) and the input's qform/sform codes.  It refuses
  2-D images, true 4-D series and empty dimensions, squeezes trailing singleton dimensions,
  and replaces NaN/inf voxels by 0 with a warning (documented choice: registration outputs
  often carry NaN outside the FOV, and refusing them would break pipelines).
* :func:`save_volume` writes float32 with scl_slope=1/scl_inter=0 (or, asked, an integer type with
  the scaling that stores the values best: ``--dtype``), qform and sform
  both set to the affine with the input's codes (1 = scanner when the input had none), and
  xyzt_units = mm.  It writes to a temporary file in the target folder and renames it, so a
  failure never leaves a partial output and an existing file is only replaced when complete.

Example::

    vol = load_volume("sub-01_T1w.nii.gz")
    save_volume("out.nii.gz", vol.data * 2, vol.affine, codes=vol.codes)
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import tempfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrsr_cli.errors import MrsrError, UsageError
from mrsr_cli.data.geometry import Grid

log = logging.getLogger("mrsr")

NIFTI_SUFFIXES = (".nii.gz", ".nii")
MGH_SUFFIXES = (".mgz", ".mgh")  # FreeSurfer's format: read and written (float32) through nibabel
IMAGE_SUFFIXES = NIFTI_SUFFIXES + MGH_SUFFIXES


@dataclass
class Volume:
    """A 3-D image: float32 ``data`` (i, j, k), 4x4 voxel→world ``affine`` (mm)."""

    data: np.ndarray
    affine: np.ndarray
    codes: tuple[int, int] = (1, 1)  # (qform_code, sform_code) of the source file
    path: Path | None = None
    slice_axis: int | None = None  # the header's slice dimension (dim_info), 0-based, if it names one
    disk_dtype: str = "float32"  # the type the file stored its voxels in (save_volume's dtype="input")

    @property
    def grid(self) -> Grid:
        return Grid(self.data.shape, self.affine)


def nifti_stem(path: str | os.PathLike) -> str:
    """File name without its .nii/.nii.gz suffix."""
    name = Path(path).name
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def sidecar_path(path: str | os.PathLike) -> Path:
    """BIDS-style JSON sidecar next to an image: ``x.nii.gz`` → ``x.json``."""
    path = Path(path)
    return path.with_name(nifti_stem(path) + ".json")


def _open_nifti(path: str | os.PathLike, what: str):
    """Open a NIfTI file and check its header: ``(image, path, 3-D shape, affine)``; no voxel data read."""
    import nibabel as nib

    path = Path(path)
    if not path.exists():
        raise MrsrError(f"{what} file not found: {path}")
    if path.is_dir():
        raise MrsrError(f"{what} is a directory, not a NIfTI file: {path}")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for bad files
        raise MrsrError(f"cannot read {path} as NIfTI: {_reason(exc)}") from exc
    shape, affine = _check_image(img, path)
    return img, path, shape, affine


def _check_image(img, path) -> tuple[tuple, np.ndarray]:
    """``(shape, affine)`` of a nibabel image that mrsr can use, else a one-line :class:`MrsrError`."""
    import nibabel as nib

    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image, nib.MGHImage)):
        raise MrsrError(f"{path} is not a NIfTI or MGH image (found {type(img).__name__})")
    shape = tuple(int(n) for n in img.shape)
    if any(n == 0 for n in shape):
        raise MrsrError(f"{path} has an empty dimension (shape {shape})")
    if len(shape) < 3:
        raise MrsrError(f"{path} is {len(shape)}-D (shape {shape}); mrsr needs a 3-D volume")
    squeezed = shape[:3] + tuple(n for n in shape[3:] if n != 1)
    if len(squeezed) > 3:
        raise MrsrError(
            f"{path} is 4-D with {int(np.prod(shape[3:]))} volumes (shape {shape}); "
            "split it first (e.g. fslsplit) and process each 3-D volume"
        )
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise MrsrError(f"{path} has an invalid (singular or non-finite) affine")
    return shape, affine


def load_grid(path: str | os.PathLike, what: str = "grid reference") -> Grid:
    """The voxel grid of a NIfTI file (e.g. for ``--like``), read from its header alone."""
    _, _, shape, affine = _open_nifti(path, what)
    return Grid(shape[:3], affine)


def load_volume(path: str | os.PathLike, what: str = "input") -> Volume:
    """Read a 3-D NIfTI image as float32; raise :class:`MrsrError` with a one-line reason."""
    img, path, shape, affine = _open_nifti(path, what)
    return _volume(img, path, shape, affine)


def volume_from_image(img, name: str = "image") -> Volume:
    """The :class:`Volume` of an in-memory nibabel NIfTI image, with :func:`load_volume`'s checks and
    conversions (``name`` stands for the path in messages)."""
    shape, affine = _check_image(img, name)
    return _volume(img, None, shape, affine)


def _volume(img, path, shape, affine) -> Volume:
    try:
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape[:3])
    except Exception as exc:
        raise MrsrError(f"cannot read the voxel data of {path or 'the image'}: {_reason(exc)}") from exc
    data = np.ascontiguousarray(data)
    bad = ~np.isfinite(data)
    n_bad = int(bad.sum())
    if n_bad:
        log.warning("%s: %d NaN/inf voxels replaced by 0", path or "the image", n_bad)
        data[bad] = 0.0
    if hasattr(img.header, "get_qform"):
        _, qcode = img.header.get_qform(coded=True)
        _, scode = img.header.get_sform(coded=True)
        try:
            slice_dim = img.header.get_dim_info()[2]
        except Exception:  # a malformed dim_info is not worth refusing the image for
            slice_dim = None
    else:  # MGH: its vox2ras is scanner RAS, and it names no slice axis
        qcode = scode = 1
        slice_dim = None
    return Volume(data=data, affine=affine, codes=(int(qcode or 0), int(scode or 0)), path=path,
                  slice_axis=int(slice_dim) if slice_dim is not None and int(slice_dim) < 3 else None,
                  disk_dtype=np.dtype(img.get_data_dtype()).name)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (gzip.BadGzipFile, zlib.error, EOFError)):
        return f"corrupt or truncated file ({exc})" if str(exc) else "corrupt or truncated file"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def require_suffix(out: str | os.PathLike, suffixes=IMAGE_SUFFIXES) -> Path:
    """``out`` as a path, or a :class:`UsageError` unless its name ends with one of ``suffixes``."""
    out = Path(out)
    if suffixes and not str(out).endswith(tuple(suffixes)):
        raise UsageError(f"output {out} must end with {' or '.join(suffixes)}")
    return out


def check_output_path(out: str | os.PathLike, inputs=(), force: bool = False, suffixes=IMAGE_SUFFIXES) -> Path:
    """Validate a command's one output before any work is done: its suffix (one of ``suffixes``),
    then :func:`check_outputs`."""
    out = require_suffix(out, suffixes)
    check_outputs([out], inputs, force)
    return out


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop, a path too long
        raise MrsrError(f"cannot resolve {path}: {exc}") from None


def check_outputs(outputs, inputs=(), force: bool = False, may_exist=()) -> list[Path]:
    """Validate every file a command writes, as one set, before any work is done.

    Refuses: a missing output folder; an output that is a directory, an input, or the JSON
    sidecar of a NIfTI input (inputs are never modified, with or without ``force``); two
    outputs that are the same file; an existing output without ``force``, unless it is one of
    ``may_exist`` (a resumed training's log and checkpoint).  ``None`` entries are skipped.
    """
    may_exist = {Path(p) for p in may_exist if p is not None}
    outs = [Path(o) for o in outputs if o is not None]
    protected = {}
    for source in (Path(s) for s in inputs if s is not None):
        protected[_resolved(source)] = f"input {source}"
        if source.name.endswith(IMAGE_SUFFIXES):
            protected.setdefault(_resolved(sidecar_path(source)), f"the sidecar of input {source}")
    seen: dict[Path, Path] = {}
    for out in outs:
        if not out.parent.exists():
            raise MrsrError(f"output folder does not exist: {out.parent}")
        if out.is_dir():
            raise MrsrError(f"output {out} is a directory")
        where = _resolved(out)
        if where in protected:
            raise UsageError(f"output {out} is the same file as {protected[where]}; inputs are never modified")
        if where in seen:
            raise UsageError(f"outputs {seen[where]} and {out} are the same file")
        seen[where] = out
        if out.exists() and not force and out not in may_exist:
            raise MrsrError(f"output exists: {out} (use --force to overwrite)")
    return outs


def _temporary_name(path: Path) -> Path:
    """A short hidden name beside ``path`` with its suffix (nibabel reads the format from it);
    short, so that a long output name still fits the file system's limit."""
    suffix = next((s for s in IMAGE_SUFFIXES if path.name.endswith(s)), path.suffix)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".mrsr-", suffix=".part" + suffix)
    os.close(fd)
    return Path(tmp)


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file in ``path``'s folder, then rename it."""
    tmp = _temporary_name(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def output_set(outputs):
    """Write several files as one: yields ``{final path: temporary path}`` (``None`` entries
    skipped); the temporary files are renamed onto their final paths only once the block has
    written them all, and on any error none of them is left behind."""
    temps = {Path(o): _temporary_name(Path(o)) for o in outputs if o is not None}
    try:
        yield temps
        for final, tmp in temps.items():
            if tmp.exists() and tmp.stat().st_size:
                os.chmod(tmp, 0o644)
                os.replace(tmp, final)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


# What --dtype may ask for: float32 (the default), int16 (scaled), or the input file's own type.
OUTPUT_DTYPES = ("float32", "int16", "input")


def output_dtype(name: str, input_dtype: str = "float32") -> np.dtype:
    """The on-disk type for ``--dtype name``: ``input`` keeps an integer input's type and writes float
    inputs (float64 included) as float32.

    >>> output_dtype("input", "uint8"), output_dtype("input", "float64"), output_dtype("int16")
    (dtype('uint8'), dtype('float32'), dtype('int16'))
    """
    if name not in OUTPUT_DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(OUTPUT_DTYPES)}, got {name!r}")
    chosen = np.dtype(input_dtype if name == "input" else name)
    return chosen if chosen.kind in "iu" else np.dtype(np.float32)


def integer_scaling(data: np.ndarray, dtype: np.dtype) -> tuple[float, float]:
    """``(scl_slope, scl_inter)`` that store ``data`` in the integer ``dtype`` with the least rounding:
    slope 1 and intercept 0 when the values are already whole numbers in its range, else the
    output's range mapped onto the type's whole range (value = stored × slope + intercept).

    >>> integer_scaling(np.array([0.0, 3.0, 7.0]), np.dtype("int16"))
    (1.0, 0.0)
    >>> slope, inter = integer_scaling(np.array([0.0, 1.5]), np.dtype("uint8")); round(slope * 255 + inter, 6)
    1.5
    """
    info = np.iinfo(dtype)
    lo, hi = float(data.min()), float(data.max())
    if lo >= info.min and hi <= info.max and np.array_equal(data, np.round(data)):
        return 1.0, 0.0
    slope = (hi - lo) / (float(info.max) - float(info.min)) or 1.0
    return slope, lo - float(info.min) * slope


def save_volume(path: str | os.PathLike, data: np.ndarray, affine: np.ndarray, codes: tuple[int, int] = (1, 1),
                slice_axis: int | None = None, dtype: np.dtype | str = "float32") -> Path:
    """Write ``data`` as NIfTI-1 atomically (see module docstring for the header rules);
    ``slice_axis`` (0-based) is recorded as the header's slice dimension (``dim_info``).  ``dtype``:
    float32, or an integer type with ``scl_slope``/``scl_inter`` from :func:`integer_scaling`, so
    that readers that apply the scaling (nibabel, FSL, ANTs) get the values back to within half a
    step (``scl_slope / 2``)."""
    path = Path(path)
    dtype = np.dtype(dtype)
    if path.name.endswith(MGH_SUFFIXES):
        return _save_mgh(path, data, affine, dtype)
    img = to_image(data, affine, codes, slice_axis)
    data = np.asarray(img.dataobj)
    header = img.header
    header.set_data_offset(352)
    if dtype.kind in "iu":
        slope, inter = integer_scaling(data, dtype)
        header.set_data_dtype(dtype)
        header["scl_slope"], header["scl_inter"] = slope, inter
        info = np.iinfo(dtype)

        def to_disk(plane):
            return np.clip(np.round((plane - inter) / slope), info.min, info.max).astype(dtype.newbyteorder("<"))
    else:
        header["scl_slope"], header["scl_inter"] = 1.0, 0.0  # nibabel would write NaN ("unset")

        def to_disk(plane):
            return plane.astype("<f4", copy=False)
    header_bytes = header.binaryblock + b"\x00" * 4  # 348-byte header + empty extension flag
    return _write_nifti(path, header_bytes, data, to_disk)


def check_output_dtype(path, dtype: str) -> None:
    """Refuse, before any work, an integer ``--dtype`` for an MGH output: MGH has no scaling fields."""
    if dtype != "float32" and str(path).endswith(MGH_SUFFIXES):
        raise UsageError(f"--dtype {dtype} needs NIfTI's scl_slope/scl_inter; {path} (MGH) is written as float32: "
                         "drop --dtype or write .nii.gz")


def _save_mgh(path: Path, data: np.ndarray, affine: np.ndarray, dtype: np.dtype) -> Path:
    """Write a float32 MGH (.mgz compressed) atomically through nibabel."""
    import nibabel as nib

    if dtype != np.float32:
        raise UsageError(f"{path}: MGH outputs are float32")
    img = nib.MGHImage(np.asarray(data, dtype=np.float32), np.asarray(affine, dtype=np.float64))
    atomic_write(path, lambda tmp: nib.save(img, str(tmp)))
    return path


def to_image(data: np.ndarray, affine: np.ndarray, codes: tuple[int, int] = (1, 1), slice_axis: int | None = None):
    """A float32 ``nibabel.Nifti1Image`` with the header rules of :func:`save_volume` (qform and
    sform both the affine, with the input's codes; mm units; the slice dimension when given)."""
    import nibabel as nib

    data = np.asarray(data, dtype=np.float32)
    affine = np.asarray(affine, dtype=np.float64)
    qcode, scode = (int(c) for c in codes)
    if qcode == 0 and scode == 0:
        qcode = scode = 1
    qcode = qcode or scode
    scode = scode or qcode
    header = nib.Nifti1Header()
    header.set_data_dtype(np.float32)
    img = nib.Nifti1Image(data, affine, header)
    img.header.set_qform(affine, code=qcode)
    img.header.set_sform(affine, code=scode)
    img.header.set_xyzt_units("mm", "sec")
    if slice_axis is not None:
        img.header.set_dim_info(slice=int(slice_axis))
    img.header["descrip"] = b"mrsr"
    img.header["scl_slope"], img.header["scl_inter"] = 1.0, 0.0
    return img


def _write_nifti(path: Path, header_bytes: bytes, data: np.ndarray, to_disk) -> Path:
    """Write the header, then the voxels slice by slice (``to_disk(plane)``: little-endian values), atomically."""

    def write(tmp: Path) -> None:
        # Stream slice by slice (NIfTI is Fortran order) so a 0.5 mm brain is never copied whole.
        opener = (lambda p: gzip.open(p, "wb", compresslevel=1)) if str(path).endswith(".gz") else (lambda p: open(p, "wb"))
        with opener(tmp) as fh:
            fh.write(header_bytes)
            for k in range(data.shape[2]):
                fh.write(to_disk(data[:, :, k]).tobytes(order="F"))

    atomic_write(path, write)
    return path


def read_text(path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of ``path`` (a manifest, an index, a pairs table), or a one-line
    :class:`MrsrError` naming ``what`` for a binary or unreadable file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MrsrError(f"{what} {path} is not text (UTF-8)") from None
    except OSError as exc:
        raise MrsrError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if "\0" in text:
        raise MrsrError(f"{what} {path} is not text (it holds NUL bytes)")
    return text


def write_json(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` as indented JSON atomically."""
    path = Path(path)
    text = json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
