"""The builtin models' upscale outputs stay bit for bit what they were (refactors change no figure).

The expected digests (tests/data/builtin_outputs.json) were made by the code of commit 25fded6,
before the engine was split into device/tiling/channels, on the development machine (AMD EPYC,
avx512_bf16, torch 2.13.0 CPU): ``python tests/test_builtin_outputs.py > tests/data/builtin_outputs.json``
run with that checkout first on PYTHONPATH (the ``psf-aware`` case was added with that model, by
the code of the commit that ships it; ``default-x2-consistency-auto``, the default since round 20,
by the code of the commit that made ``--consistency auto`` the default).  fp32 and one thread keep the arithmetic fixed; a
different CPU family may round differently, which this test would then report.

The safety net (issue 33, on by default since) is off in every case: it blends towards spline
only where the pipeline loses one scale down, and its own tests cover it.

Regenerated once, by the commit that made the streamed engine the default (issue 36): streaming
runs each convolution on a few planes at a time, and oneDNN's rounding on those shapes differs from
the whole-volume call by at most 3.8e-5 on outputs of about 120 (2 float32 ulps; measured on every
case against ``--tile-size 0``, which still runs the whole volume in one call); no other change.
"""

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import ROOT, run_cli  # noqa: E402

SAMPLE = ROOT / "share" / "data" / "sample_T1w_2mm.nii.gz"
EXPECTED = Path(__file__).resolve().parent / "data" / "builtin_outputs.json"
OFF = ["--consistency", "off", "--safety-net", "off"]  # the networks' own outputs; data consistency has its own case
CASES = {
    "default-x2": ["--factor", "2", *OFF],
    "default-2,2,3-one-pass": ["--factor", "2,2,3", "--ensemble", "1", *OFF],
    "default-voxel-0.8-8-passes": ["--voxel-size", "0.8", "--ensemble", "8", *OFF],
    "guided-x2": ["--factor", "2", "--model", "guided", "--reference", "{reference}", *OFF],
    "spline-x2": ["--factor", "2", "--method", "spline"],
    "psf-aware-x2-block-mean": ["--factor", "2", "--model", "psf-aware", "--input-psf", "box", "--input-fwhm", "2", *OFF],
    "default-x2-consistency-auto": ["--factor", "2", "--safety-net", "off"],
}


def digests(workdir: Path) -> dict:
    """sha256 of each case's float32 output on a 26×30×22 crop of the bundled sample."""
    img = nib.load(str(SAMPLE))
    start = np.array([32, 40, 30])
    crop = np.asarray(img.dataobj, dtype=np.float32)[32:58, 40:70, 30:52]
    affine = img.affine.copy()
    affine[:3, 3] = img.affine[:3, :3] @ start + img.affine[:3, 3]
    src = workdir / "crop.nii.gz"
    nib.save(nib.Nifti1Image(crop, affine), str(src))
    out = {}
    for name, args in CASES.items():
        args = [a.format(reference=src) for a in args]
        if "spline" not in name:
            args += ["--precision", "fp32", "--threads", "1"]
        target = workdir / f"{name}.nii.gz"
        run_cli("upscale", src, target, *args, "-q", check=0)
        data = np.ascontiguousarray(np.asarray(nib.load(str(target)).dataobj, dtype=np.float32))
        out[name] = {"shape": list(data.shape), "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    return out


def test_builtin_upscale_outputs_are_bit_identical(tmp_path):
    assert digests(tmp_path) == json.loads(EXPECTED.read_text())


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(digests(Path(tmp)), indent=1))
