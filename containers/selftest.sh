#!/usr/bin/env bash
# Container self-test (Apptainer %test, Docker build check, and tests/test_containers.py):
# mrsr --version, then a tiny spline and CNN upscale whose output header is checked.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mrsr --version
python3 - "$tmp" <<'PY'
import sys, numpy as np, nibabel as nib
affine = np.diag([2.0, 2.0, 2.0, 1.0]); affine[:3, 3] = (-12, -12, -12)
data = np.zeros((12, 12, 12), np.float32); data[3:9, 3:9, 3:9] = 100
nib.save(nib.Nifti1Image(data, affine), f"{sys.argv[1]}/in.nii.gz")
PY
mrsr upscale "$tmp/in.nii.gz" "$tmp/spline.nii.gz" --factor 2 --method spline -q
mrsr upscale "$tmp/in.nii.gz" "$tmp/cnn.nii.gz" --factor 2 -q
python3 - "$tmp" <<'PY'
import sys, numpy as np, nibabel as nib
for name in ("spline", "cnn"):
    img = nib.load(f"{sys.argv[1]}/{name}.nii.gz")
    assert img.shape == (24, 24, 24), img.shape
    assert img.header.get_data_dtype() == np.float32
    assert np.allclose(img.header.get_zooms(), 1.0)
    assert np.allclose(img.affine[:3, 3], (-12.5, -12.5, -12.5)), img.affine
    assert int(img.header["sform_code"]) > 0 and int(img.header["qform_code"]) > 0
print("mrsr selftest: ok")
PY
