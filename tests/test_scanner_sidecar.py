"""upscale --input-psf auto (the default): the input's scanner sidecar tells its PSF family
(mrsr_cli.degrade.scanner), and the output is what the same PSF typed by hand gives."""

import json

import nibabel as nib
import numpy as np
import pytest

from conftest import make_affine, phantom, run_cli, save_nifti
from mrsr_cli.degrade.scanner import SLICE_PROFILE, psf_from_sidecar

FAST = ("--ensemble", "1", "--safety-net", "off", "-q")


@pytest.mark.parametrize("sidecar,voxel,psf,fwhm", [
    ({"MRAcquisitionType": "3D", "SliceThickness": 1.2}, (1, 1, 1.2), "kspace", None),
    ({"MRAcquisitionType": "2d", "SliceThickness": 4, "SpacingBetweenSlices": 4.8}, (0.5, 0.5, 4.8), SLICE_PROFILE, (0.5, 0.5, 4.0)),
    ({"MRAcquisitionType": "2D", "SliceThickness": 3, "SliceEncodingDirection": "j-"}, (1, 5, 1), SLICE_PROFILE, (1, 3, 1)),
    ({"MRAcquisitionType": "2D", "SliceThickness": "n/a"}, (1, 1, 5), SLICE_PROFILE, (1, 1, 5)),  # the spacing then
    ({"MRAcquisitionType": "2D", "SliceThickness": -2}, (1, 1, 5), SLICE_PROFILE, (1, 1, 5)),
    ({"Manufacturer": "Siemens"}, (1, 1, 1), None, None),  # no acquisition type: nothing told
    ({"MRAcquisitionType": "0D"}, (1, 1, 1), None, None),
    (None, (1, 1, 1), None, None),
])
def test_psf_from_sidecar(sidecar, voxel, psf, fwhm):
    told = psf_from_sidecar(sidecar, voxel)
    assert (told is None) == (psf is None)
    if told:
        assert told.input_psf == psf and told.input_fwhm == (None if fwhm is None else tuple(map(float, fwhm)))
        assert sidecar["MRAcquisitionType"].upper() in told.reason


def _upscale(lr, out, *extra):
    proc = run_cli("upscale", lr, out, "--factor", "2", *FAST, *extra)
    assert proc.returncode == 0, proc.stderr
    return nib.load(str(out)).get_fdata(dtype=np.float32), json.loads(out.with_name(out.name[:-7] + ".json").read_text())


def test_a_3d_sidecar_is_told_kspace_exactly_as_typing_it(tmp_path):
    bare = save_nifti(tmp_path / "bare.nii.gz", phantom((20, 22, 18)) * 100, make_affine((2.0, 2.0, 2.0), oblique=True))
    scan = tmp_path / "sub-01_T1w.nii.gz"
    scan.write_bytes(bare.read_bytes())
    (tmp_path / "sub-01_T1w.json").write_text(json.dumps({"Modality": "MR", "MRAcquisitionType": "3D",
                                                          "ConversionSoftware": "dcm2niix"}))
    read, record = _upscale(scan, tmp_path / "read.nii.gz")
    typed, typed_record = _upscale(bare, tmp_path / "typed.nii.gz", "--input-psf", "kspace")
    assert np.array_equal(read, typed)
    assert record["InputPSFFromSidecar"]["Shape"] == "kspace" and "MRAcquisitionType 3D" in record["InputPSFFromSidecar"]["Reason"]
    assert record["Model"] == typed_record["Model"] == "default" and record["InputPSF"]["Shape"] == "kspace"
    assert "InputMatchedToPSF" in record
    # --input-psf gaussian, or a typed --input-fwhm, ignores the sidecar: the default model, as without one
    plain, plain_record = _upscale(bare, tmp_path / "plain.nii.gz")
    over, over_record = _upscale(scan, tmp_path / "over.nii.gz", "--input-psf", "gaussian")
    assert np.array_equal(over, plain) and "InputPSFFromSidecar" not in over_record and over_record["Model"] == plain_record["Model"]
    fwhm, fwhm_record = _upscale(scan, tmp_path / "fwhm.nii.gz", "--input-fwhm", "2")
    assert "InputPSFFromSidecar" not in fwhm_record and fwhm_record["InputPSF"]["Shape"] == "gaussian"


def test_a_2d_sidecar_is_told_its_slice_profile(tmp_path):
    scan = save_nifti(tmp_path / "sub-01_FLAIR.nii.gz", phantom((24, 26, 8)) * 100, make_affine((1.0, 1.0, 4.0)))
    (tmp_path / "sub-01_FLAIR.json").write_text(json.dumps({"MRAcquisitionType": "2D", "SliceThickness": 3.0,
                                                            "SpacingBetweenSlices": 4.0}))
    bare = save_nifti(tmp_path / "bare.nii.gz", phantom((24, 26, 8)) * 100, make_affine((1.0, 1.0, 4.0)))
    proc = run_cli("upscale", scan, tmp_path / "read.nii.gz", "--factor", "1,1,4", "--ensemble", "1", "--safety-net", "off")
    assert proc.returncode == 0, proc.stderr
    assert "the input's sidecar says MRAcquisitionType 2D" in proc.stderr  # one line at the default verbosity
    typed = run_cli("upscale", bare, tmp_path / "typed.nii.gz", "--factor", "1,1,4", *FAST,
                    "--input-psf", SLICE_PROFILE, "--input-fwhm", "1,1,3")
    assert typed.returncode == 0, typed.stderr
    read = nib.load(str(tmp_path / "read.nii.gz")).get_fdata(dtype=np.float32)
    assert np.array_equal(read, nib.load(str(tmp_path / "typed.nii.gz")).get_fdata(dtype=np.float32))
    record = json.loads((tmp_path / "read.json").read_text())["InputPSFFromSidecar"]
    assert record == {"Shape": SLICE_PROFILE, "FWHM": [1.0, 1.0, 3.0], "Reason": record["Reason"]} and "4 mm apart" in record["Reason"]


def test_an_unreadable_sidecar_is_ignored_with_one_warning(tmp_path):
    scan = save_nifti(tmp_path / "sub-01_T1w.nii.gz", phantom((16, 18, 14)) * 100, make_affine((2.0, 2.0, 2.0)))
    (tmp_path / "sub-01_T1w.json").write_text("{not json")
    proc = run_cli("upscale", scan, tmp_path / "out.nii.gz", "--factor", "2", "--ensemble", "1", "--safety-net", "off")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if "ignoring the input's sidecar" in line]
    assert "InputPSFFromSidecar" not in json.loads((tmp_path / "out.json").read_text())


def test_the_api_reads_a_sidecar_given_as_a_dict():
    import mrsr_cli

    img = nib.Nifti1Image((phantom((16, 18, 14)) * 100).astype(np.float32), make_affine((2.0, 2.0, 2.0)))
    out = mrsr_cli.upscale(img, factor=2, ensemble=1, safety_net="off", sidecar={"MRAcquisitionType": "3D"})
    assert out.extra["mrsr"]["InputPSFFromSidecar"]["Shape"] == "kspace" and "InputMatchedToPSF" in out.extra["mrsr"]
    plain = mrsr_cli.upscale(img, factor=2, ensemble=1, safety_net="off")
    assert "InputPSFFromSidecar" not in plain.extra["mrsr"]


def test_input_sidecar_follows_bids_inheritance(tmp_path):
    from mrsr_cli.data.bids import input_sidecar

    root = tmp_path / "bids"
    anat = root / "sub-01" / "ses-a" / "anat"
    anat.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.9.0"}))
    image = anat / "sub-01_ses-a_T1w.nii.gz"
    image.write_bytes(b"")  # only its name and place matter here
    (root / "T1w.json").write_text(json.dumps({"MRAcquisitionType": "2D", "SliceThickness": 4, "RepetitionTime": 2}))
    (root / "T2w.json").write_text(json.dumps({"MRAcquisitionType": "3D"}))  # another suffix
    (root / "sub-01" / "sub-01_T1w.json").write_text(json.dumps({"SliceThickness": 3.5}))
    (anat / "sub-01_ses-a_T1w.json").write_text(json.dumps({"SliceThickness": 3}))
    (anat / "sub-01_ses-a_acq-fast_T1w.json").write_text(json.dumps({"MRAcquisitionType": "3D"}))  # not a subset
    (anat / "sub-02_T1w.json").write_text(json.dumps({"MRAcquisitionType": "3D"}))  # another subject
    assert input_sidecar(image) == {"MRAcquisitionType": "2D", "SliceThickness": 3, "RepetitionTime": 2}
    # the same-stem file alone outside a dataset (no dataset_description.json above)
    (root / "dataset_description.json").unlink()
    assert input_sidecar(image) == {"SliceThickness": 3}
    assert input_sidecar(tmp_path / "none.nii.gz") is None
