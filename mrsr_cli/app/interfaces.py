"""Nipype interfaces: one ``CommandLine`` per subcommand, so each torch/CUDA process is isolated.

    from mrsr_cli.app.interfaces import Simulate, Register, Train, Upscale, Evaluate, FetchModel
    up = Upscale(in_file="sub-01_T1w.nii.gz", factor=[2, 2, 2])
    up.cmdline   # 'mrsr upscale sub-01_T1w.nii.gz .../sub-01_desc-superres_T1w.nii.gz --factor 2.0,2.0,2.0 --force'

Inputs are named after the CLI options.  ``num_threads`` and ``use_gpu`` are ``nohash`` and
read by Nipype's MultiProc scheduler (``n_procs``/``n_gpu_procs``).  Outputs always overwrite
(``--force``) because Nipype decides when a node reruns.  The executable is ``$MRSR_EXECUTABLE``,
else the ``mrsr`` next to the running Python, else ``python -m mrsr_cli.app.cli``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from nipype.interfaces.base import (
    CommandLine,
    CommandLineInputSpec,
    File,
    OutputMultiObject,
    TraitedSpec,
    isdefined,
    traits,
)

from mrsr_cli.app.options import input_traits


def mrsr_executable() -> str:
    env = os.environ.get("MRSR_EXECUTABLE")
    if env:
        return env
    beside = Path(sys.executable).parent / "mrsr"
    if beside.exists():
        return str(beside)
    return shutil.which("mrsr") or f"{sys.executable} -m mrsr_cli.app.cli"


def _sidecar(path: str) -> str:
    from mrsr_cli.data.io import sidecar_path

    return str(sidecar_path(path))


class _MrsrCommand(CommandLine):
    subcommand = ""

    def __init__(self, **inputs):
        super().__init__(command=f"{mrsr_executable()} {self.subcommand}", **inputs)

    @property
    def cmd(self):  # Nipype checks the first word exists; a python -m invocation is an absolute path
        return self._cmd


class _ImageCommand(_MrsrCommand):
    """A command writing one image plus its JSON sidecar.  A generated output name follows BIDS: the
    template's entity goes before the suffix (``sub-01_desc-superres_T1w.nii.gz``, not
    ``sub-01_T1w_desc-superres.nii.gz``; :func:`mrsr_cli.data.bids.bids_name`)."""

    def _filename_from_source(self, name, chain=None):
        from mrsr_cli.data.bids import bids_name

        value = super()._filename_from_source(name, chain)
        if name == "out_file" and isdefined(value) and not isdefined(getattr(self.inputs, name)):
            return str(bids_name(value))
        return value

    def _list_outputs(self):
        outputs = super()._list_outputs()
        outputs["out_json"] = _sidecar(outputs["out_file"])
        return outputs


def _input_spec(command: str) -> type:
    """The input spec of ``mrsr COMMAND``, its traits generated from the option table
    (:func:`mrsr_cli.app.options.input_traits`)."""
    name = "".join(part.title() for part in command.split("-")) + "InputSpec"
    return type(name, (CommandLineInputSpec,), {"__module__": __name__, **input_traits(command)})


SimulateInputSpec = _input_spec("simulate")
UpscaleInputSpec = _input_spec("upscale")
RegisterInputSpec = _input_spec("register")
TrainInputSpec = _input_spec("train")
EvaluateInputSpec = _input_spec("evaluate")
FetchModelInputSpec = _input_spec("fetch-model")


class ImageOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="output image")
    out_json = File(exists=True, desc="JSON sidecar")


class Simulate(_ImageCommand):
    """``mrsr simulate``: simulated low-resolution acquisition."""

    subcommand = "simulate"
    input_spec = SimulateInputSpec
    output_spec = ImageOutputSpec


class Upscale(_ImageCommand):
    """``mrsr upscale``: CNN or spline super-resolution."""

    subcommand = "upscale"
    input_spec = UpscaleInputSpec
    output_spec = ImageOutputSpec


class RegisterOutputSpec(ImageOutputSpec):
    transform_file = File(exists=True, desc="ITK transform (text)")


class Register(_ImageCommand):
    """``mrsr register``: rigid/affine Mattes-MI registration (SimpleITK)."""

    subcommand = "register"
    input_spec = RegisterInputSpec
    output_spec = RegisterOutputSpec


class TrainOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="trained model (.safetensors)")
    log_file = File(exists=True, desc="JSONL training curve")


class Train(_MrsrCommand):
    """``mrsr train``: train a network of the registry (ReCNN, SRCNN3D, EDSR-3D), guided or not."""

    subcommand = "train"
    input_spec = TrainInputSpec
    output_spec = TrainOutputSpec

    def _list_outputs(self):
        out = os.path.abspath(self.inputs.out_file)
        log = os.path.abspath(self.inputs.log_file) if isdefined(self.inputs.log_file) else out.removesuffix(".safetensors") + ".log.jsonl"
        return {"out_file": out, "log_file": log}


class EvaluateOutputSpec(TraitedSpec):
    csv_file = File(exists=True, desc="metrics table")
    metrics = traits.List(traits.Dict, desc="one dict per image: psnr, ssim, data_range, mask_voxels")
    psnr = traits.List(traits.Float, desc="PSNR (dB) per image")
    comparison = traits.Dict(desc="with a manifest: summary, paired tests and ANOVA")
    plot_file = File(desc="box plot (with a manifest)")
    ssim = traits.List(traits.Float, desc="SSIM per image")


class Evaluate(_MrsrCommand):
    """``mrsr evaluate``: PSNR/SSIM per image; metrics are returned as outputs."""

    subcommand = "evaluate"
    input_spec = EvaluateInputSpec
    output_spec = EvaluateOutputSpec

    def aggregate_outputs(self, runtime=None, needed_outputs=None):
        outputs = self._outputs()
        result = json.loads(runtime.stdout)
        rows = result["rows"] if isinstance(result, dict) else result  # a manifest gives the comparison too
        if isinstance(result, dict):
            outputs.comparison = result
        if isdefined(self.inputs.plot_file):
            outputs.plot_file = os.path.abspath(self.inputs.plot_file)
        outputs.metrics = rows
        outputs.psnr = [float(r["psnr"]) for r in rows]  # "inf" (identical images: strict JSON) reads back as inf
        outputs.ssim = [float(r["ssim"]) for r in rows]
        outputs.csv_file = os.path.abspath(self.inputs.csv_file)
        return outputs


class FetchModelOutputSpec(TraitedSpec):
    model_files = OutputMultiObject(File(exists=True), desc="fetched model files")


class FetchModel(_MrsrCommand):
    """``mrsr fetch-model``: checksummed model download into the cache or ``dest``."""

    subcommand = "fetch-model"
    input_spec = FetchModelInputSpec
    output_spec = FetchModelOutputSpec

    def aggregate_outputs(self, runtime=None, needed_outputs=None):
        outputs = self._outputs()
        outputs.model_files = [f["path"] for f in json.loads(runtime.stdout)["fetched"]]
        return outputs


__all__ = ["Simulate", "Register", "Train", "Upscale", "Evaluate", "FetchModel", "mrsr_executable"]
