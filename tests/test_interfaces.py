"""Nipype interfaces (auto-spec style), a real MultiProc workflow, the BIDS workflow."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nipype import Node, Workflow

from conftest import make_affine, phantom, save_nifti
from mrsr_cli.app import interfaces as ifaces
from mrsr_cli.app.workflows import build_workflow, derivative_path, find_images

EXPECTED = {
    "Simulate": {"in_file": {"argstr": "%s", "mandatory": True, "position": 0},
                 "out_file": {"argstr": "%s", "name_source": ["in_file"], "name_template": "%s_desc-lowres", "position": 1},
                 "factor": {"argstr": "--factor %s", "sep": ",", "xor": ["factor", "voxel_size"]},
                 "psf": {"argstr": "--psf %s"}, "noise": {"argstr": "--noise %g"}, "seed": {"argstr": "--seed %d"}},
    "Upscale": {"in_file": {"argstr": "%s", "mandatory": True, "position": 0},
                "out_file": {"name_template": "%s_desc-superres", "keep_extension": True, "hash_files": False},
                "factor": {"argstr": "--factor %s", "xor": ["factor", "voxel_size", "like_file"]},
                "voxel_size": {"xor": ["factor", "voxel_size", "like_file"]}, "like_file": {"argstr": "--like %s"},
                "method": {"argstr": "--method %s"}, "model": {"argstr": "--model %s"},
                "reference_file": {"argstr": "--reference %s"}, "register": {"requires": ["reference_file"]},
                "ensemble": {"argstr": "--ensemble %d"},
                "num_threads": {"nohash": True, "argstr": "--threads %d"}, "use_gpu": {"nohash": True, "argstr": "--device cuda"}},
    "Register": {"in_file": {"position": 0, "mandatory": True}, "fixed_file": {"position": 1, "mandatory": True},
                 "transform_file": {"argstr": "--save-transform %s", "name_template": "%s_xfm.tfm"},
                 "apply_transform": {"argstr": "--apply %s"}, "num_threads": {"nohash": True}},
    "Train": {"in_files": {"argstr": "%s"}, "config_file": {"argstr": "--config %s"}, "out_file": {"argstr": "--output %s"},
              "reference_files": {"argstr": "--reference %s..."}, "num_threads": {"nohash": True}, "use_gpu": {"nohash": True}},
    "Evaluate": {"reference_file": {"position": 0}, "in_files": {"position": 1}, "mask_file": {"argstr": "--mask %s"}},
    "FetchModel": {"names": {"xor": ["all_models"]}, "all_models": {"argstr": "--all", "xor": ["names"]},
                   "dest": {"argstr": "--dest %s"}},
}
OUTPUTS = {"Simulate": {"out_file", "out_json"}, "Upscale": {"out_file", "out_json"},
           "Register": {"out_file", "out_json", "transform_file"}, "Train": {"out_file", "log_file"},
           "Evaluate": {"csv_file", "metrics", "psnr", "ssim", "comparison", "plot_file"}, "FetchModel": {"model_files"}}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_input_spec_traits(name):
    inputs = getattr(ifaces, name).input_spec()
    for trait_name, metadata in EXPECTED[name].items():
        for key, value in metadata.items():
            assert getattr(inputs.traits()[trait_name], key) == value, (name, trait_name, key)
    assert set(getattr(ifaces, name).output_spec().get()) == OUTPUTS[name]


def test_cmdline_and_xor(tmp_path):
    src = save_nifti(tmp_path / "sub-01_T1w.nii.gz", phantom(), make_affine())
    up = ifaces.Upscale(in_file=str(src), factor=[2.0, 2.0, 3.0], method="spline")
    assert "--factor 2.0,2.0,3.0" in up.cmdline and "sub-01_desc-superres_T1w.nii.gz" in up.cmdline
    assert "--ensemble 8" in ifaces.Upscale(in_file=str(src), factor=[2.0], ensemble=8).cmdline
    with pytest.raises(Exception):
        ifaces.Upscale(in_file=str(src), factor=[2.0], ensemble=3)
    with pytest.raises(Exception):
        ifaces.Upscale(in_file=str(src), factor=[2.0], voxel_size=[1.0]).cmdline
    # factor lists contain ';': Nipype runs the command through a shell, so they must stay one word
    import shlex

    words = shlex.split(ifaces.Train(in_files=[str(src)], scales="2,2,2;1,1,4", val_factor="2;1,1,4", blind=True).cmdline)
    assert words[words.index("--scales") + 1] == "2,2,2;1,1,4" and words[words.index("--val-factor") + 1] == "2;1,1,4"
    with pytest.raises(Exception):
        ifaces.Train(in_files=[str(src)], blind=True, factor_input=True).cmdline


def test_two_node_workflow_multiproc(tmp_path):
    src = save_nifti(tmp_path / "hr.nii.gz", phantom((32, 32, 32)), make_affine((1, 1, 1), oblique=True))
    wf = Workflow(name="simup", base_dir=str(tmp_path / "work"))
    sim = Node(ifaces.Simulate(in_file=str(src), factor=[2.0, 2.0, 2.0]), name="simulate")
    up = Node(ifaces.Upscale(factor=[2.0, 2.0, 2.0], method="spline"), name="upscale")
    wf.connect(sim, "out_file", up, "in_file")
    result = wf.run(plugin="MultiProc", plugin_args={"n_procs": 2})
    node = next(n for n in result.nodes() if n.name == "upscale")
    out = nib.load(node.result.outputs.out_file)
    assert out.shape == (32, 32, 32)
    np.testing.assert_allclose(out.affine, nib.load(src).affine, atol=1e-5)
    assert json.loads(open(node.result.outputs.out_json).read())["Method"] == "spline"


def test_evaluate_interface_returns_metrics(tmp_path):
    ref = save_nifti(tmp_path / "ref.nii.gz", phantom(), make_affine())
    noisy = save_nifti(tmp_path / "noisy.nii.gz", phantom() + np.random.default_rng(0).normal(0, 3, phantom().shape), make_affine())
    ev = ifaces.Evaluate(reference_file=str(ref), in_files=[str(noisy), str(ref)], csv_file=str(tmp_path / "m.csv"))
    res = ev.run(cwd=str(tmp_path))
    assert res.outputs.psnr[1] == float("inf") and 20 < res.outputs.psnr[0] < 60
    assert res.outputs.ssim[1] == pytest.approx(1.0)


def _bids(tmp_path):
    root = tmp_path / "bids"
    (root).mkdir()
    (root / "dataset_description.json").write_text(json.dumps({"Name": "tiny", "BIDSVersion": "1.9.0"}))
    for sub, ses in (("01", None), ("02", "a")):
        folder = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "anat"
        folder.mkdir(parents=True)
        stem = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
        save_nifti(folder / f"{stem}_T1w.nii.gz", phantom((16, 16, 16), seed=int(sub)), make_affine((2, 2, 2)))
        save_nifti(folder / f"{stem}_T2w.nii.gz", phantom((16, 16, 16)), make_affine((2, 2, 2)))
    return root


def test_bids_workflow(tmp_path):
    root = _bids(tmp_path)
    assert len(find_images(root)) == 2
    wf = build_workflow(root, factor=(2.0, 2.0, 2.0), method="spline", base_dir=tmp_path / "work")
    wf.run(plugin="MultiProc", plugin_args={"n_procs": 2})
    outs = sorted((root / "derivatives" / "mrsr").rglob("*_desc-superres_T1w.nii.gz"))
    assert [o.name for o in outs] == ["sub-01_desc-superres_T1w.nii.gz", "sub-02_ses-a_desc-superres_T1w.nii.gz"]
    assert nib.load(outs[0]).shape == (32, 32, 32)
    desc = json.loads((root / "derivatives" / "mrsr" / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "mrsr"
    side = json.loads(outs[0].with_name("sub-01_desc-superres_T1w.json").read_text())
    assert side["Sources"] == ["bids:raw:sub-01/anat/sub-01_T1w.nii.gz"] and side["OutputVoxelSize"] == [1.0, 1.0, 1.0]
    assert desc["DatasetLinks"] == {"raw": root.resolve().as_uri()}
    assert derivative_path(root / "sub-01/anat/sub-01_desc-x_T1w.nii.gz", root).name == "sub-01_desc-superres_T1w.nii.gz"


def test_failing_node_fails_workflow(tmp_path):
    bad = tmp_path / "bad.nii.gz"
    bad.write_text("not an image")
    wf = Workflow(name="fails", base_dir=str(tmp_path / "work"))
    wf.config["execution"]["crashdump_dir"] = str(tmp_path)  # not the current directory
    wf.add_nodes([Node(ifaces.Upscale(in_file=str(bad), factor=[2.0], method="spline"), name="upscale")])
    with pytest.raises(RuntimeError):
        wf.run(plugin="MultiProc", plugin_args={"n_procs": 1})


def test_bids_app_on_a_built_tree(tmp_path):
    """``mrsr-bids BIDS_DIR OUTPUT_DIR participant``: only the chosen participants, BIDS names, a derivative
    dataset that links its raw dataset, sources as BIDS URIs; bad arguments are one-line usage errors."""
    import re
    import subprocess
    import sys

    root = _bids(tmp_path)
    # dcm2niix's sidecar of the raw image: read by each node's upscale (--input-psf auto)
    (root / "sub-02" / "ses-a" / "anat" / "sub-02_ses-a_T1w.json").write_text(json.dumps({"MRAcquisitionType": "3D"}))
    out = tmp_path / "derivatives" / "sr"
    app = [sys.executable, "-m", "mrsr_cli.app.bids_app"]
    proc = subprocess.run([*app, root, out, "participant", "--participant-label", "02", "--n-procs", "2",
                           "-w", tmp_path / "work"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    images = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.nii.gz"))
    assert images == ["sub-02/ses-a/anat/sub-02_ses-a_desc-superres_T1w.nii.gz"]  # sub-01 not asked for
    # BIDS derivative rules this test can check: entities in order, desc before the suffix, a sidecar per image
    assert all(re.fullmatch(r"sub-[a-zA-Z0-9]+(_ses-[a-zA-Z0-9]+)?_desc-[a-zA-Z0-9]+_T1w\.nii\.gz", Path(i).name) for i in images)
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["BIDSVersion"]
    assert description["GeneratedBy"][0]["Name"] == "mrsr" and description["Name"] == "mrsr super-resolution"
    assert description["DatasetLinks"]["raw"] == root.resolve().as_uri()
    sidecar = json.loads((out / images[0]).with_name("sub-02_ses-a_desc-superres_T1w.json").read_text())
    assert sidecar["Sources"] == ["bids:raw:sub-02/ses-a/anat/sub-02_ses-a_T1w.nii.gz"]
    assert sidecar["InputPSFFromSidecar"]["Shape"] == "kspace" and sidecar["Model"] == "default"
    assert "InputMatchedToPSF" in sidecar
    for bad, words in [([root, out, "group"], "invalid choice"), ([tmp_path, out, "participant"], "not a BIDS dataset"),
                       ([root, out, "participant", "--participant-label", "09"], "no *_T1w")]:
        proc = subprocess.run([*app, *map(str, bad)], capture_output=True, text=True)
        assert proc.returncode in (1, 2) and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_method_is_an_enum_trait():
    from nipype.interfaces.base import traits

    up = ifaces.Upscale(in_file=__file__)
    with pytest.raises(traits.TraitError):
        up.inputs.method = "bicubic"
    up.inputs.method = "spline"
    assert "--method spline" in up.cmdline
