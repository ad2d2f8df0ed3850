"""Nipype interfaces: one ``CommandLine`` per subcommand, so each torch/CUDA process is isolated.

    from mrsr_cli.app.interfaces import Simulate, Register, Train, Upscale, Evaluate, FetchModel
    up = Upscale(in_file="sub-01_T1w.nii.gz", factor=[2, 2, 2])
    up.cmdline   # 'mrsr upscale sub-01_T1w.nii.gz .../sub-01_T1w_desc-superres.nii.gz --factor 2.0,2.0,2.0 --force'

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
    Directory,
    File,
    InputMultiObject,
    OutputMultiObject,
    TraitedSpec,
    isdefined,
    traits,
)

from mrsr_cli.infer.tiling import ENSEMBLE_SIZES


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
    """A command writing one image plus its JSON sidecar."""

    def _list_outputs(self):
        outputs = super()._list_outputs()
        outputs["out_json"] = _sidecar(outputs["out_file"])
        return outputs


class _Common(CommandLineInputSpec):
    force = traits.Bool(True, usedefault=True, argstr="--force", desc="overwrite outputs (Nipype manages reruns)")


class _GpuThreads(_Common):
    num_threads = traits.Int(1, usedefault=True, nohash=True, argstr="--threads %d", desc="CPU threads")
    use_gpu = traits.Bool(False, usedefault=True, nohash=True, argstr="--device cuda", desc="run on the GPU")


_FACTOR_XOR = ["factor", "voxel_size", "like_file"]


class SimulateInputSpec(_Common):
    in_file = File(exists=True, mandatory=True, argstr="%s", position=0, desc="high-resolution image")
    out_file = File(argstr="%s", position=1, name_source=["in_file"], name_template="%s_lowres", keep_extension=True,
                    hash_files=False, desc="low-resolution output")
    factor = traits.List(traits.Float, minlen=1, maxlen=3, argstr="--factor %s", sep=",", xor=["factor", "voxel_size"],
                         desc="LR voxel = factor x HR voxel")
    voxel_size = traits.List(traits.Float, minlen=1, maxlen=3, argstr="--voxel-size %s", sep=",", xor=["factor", "voxel_size"],
                             desc="LR voxel size (mm)")
    fwhm = traits.List(traits.Float, minlen=1, maxlen=3, argstr="--fwhm %s", sep=",", desc="PSF FWHM (mm)")
    psf = traits.Enum("gaussian", "box", argstr="--psf %s", desc="PSF shape")
    noise = traits.Float(argstr="--noise %g", desc="Rician sigma, fraction of the 99.5th percentile")
    seed = traits.Int(argstr="--seed %d", desc="noise seed")
    slice_thickness = traits.Float(argstr="--slice-thickness %g", desc="slice thickness (mm) on the through-plane axis")
    slice_profile = traits.Enum("gaussian", "box", argstr="--slice-profile %s", requires=["slice_thickness"],
                                desc="through-plane slice profile")
    field_strength = traits.Float(argstr="--field-strength %g", desc="simulate a low-field scan at this field (tesla)")
    source_field = traits.Float(argstr="--source-field %g", requires=["field_strength"], desc="the input's field (tesla)")
    source_snr = traits.Float(argstr="--source-snr %g", requires=["field_strength"], desc="the input's SNR at its 99.5th percentile")
    tissue_maps = InputMultiObject(File(exists=True), argstr="--tissue-map %s...", requires=["field_strength"],
                                   desc="GM, WM[, CSF] maps on the input's grid (low-field contrast)")


class ImageOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="output image")
    out_json = File(exists=True, desc="JSON sidecar")


class Simulate(_ImageCommand):
    """``mrsr simulate``: simulated low-resolution acquisition."""

    subcommand = "simulate"
    input_spec = SimulateInputSpec
    output_spec = ImageOutputSpec


class UpscaleInputSpec(_GpuThreads):
    in_file = File(exists=True, mandatory=True, argstr="%s", position=0, desc="low-resolution image")
    out_file = File(argstr="%s", position=1, name_source=["in_file"], name_template="%s_desc-superres", keep_extension=True,
                    hash_files=False, desc="super-resolved output")
    factor = traits.List(traits.Float, minlen=1, maxlen=3, argstr="--factor %s", sep=",", xor=_FACTOR_XOR, desc="scale factor")
    voxel_size = traits.List(traits.Float, minlen=1, maxlen=3, argstr="--voxel-size %s", sep=",", xor=_FACTOR_XOR,
                             desc="output voxel size (mm)")
    like_file = File(exists=True, argstr="--like %s", xor=_FACTOR_XOR, desc="resample onto this image's grid")
    method = traits.Str(argstr="--method %s", desc="a key of mrsr_cli.methods.METHODS: cnn (default), spline, lrtv")
    order = traits.Range(1, 5, argstr="--order %d", desc="spline order")
    model = traits.Either(File(exists=True), traits.Str, argstr="--model %s", desc="model file (hashed) or name")
    reference_file = File(exists=True, argstr="--reference %s", desc="HR reference of another contrast")
    register = traits.Bool(argstr="--register", requires=["reference_file"], desc="register the reference first")
    guidance = traits.Enum("auto", "network", "transfer", argstr="--guidance %s", requires=["reference_file"],
                           desc="how the reference guides: auto (default), network (guided model) or transfer")
    input_fwhm = traits.List(traits.Float, minlen=1, maxlen=3, argstr="--input-fwhm %s", sep=",",
                             desc="the input's PSF FWHM (mm; PSF-aware models and lrtv)")
    input_psf = traits.Enum("gaussian", "box", argstr="--input-psf %s", desc="the input's PSF shape")
    consistency = traits.Str(argstr="--consistency %s", desc="data consistency after the network: auto (default), off or N iterations")
    precision = traits.Enum("auto", "fp32", "bf16", "fp16", argstr="--precision %s", desc="compute precision")
    tile_size = traits.Int(argstr="--tile-size %d", desc="tile core edge (voxels), 0 = whole volume")
    memory_limit = traits.Str(argstr="--memory-limit %s", desc="memory budget, e.g. 4G")
    ensemble = traits.Enum(*ENSEMBLE_SIZES, argstr="--ensemble %d", desc="flip self-ensemble passes (N times slower)")
    preview_file = File(argstr="--preview %s", hash_files=False, desc="also write a PNG of three orthogonal slices")
    lrtv_iterations = traits.Range(1, 1000, argstr="--lrtv-iterations %d", desc="LRTV: ADMM iterations")
    lrtv_lambda_tv = traits.Range(0.0, 10.0, argstr="--lrtv-lambda-tv %g", desc="LRTV: TV weight (intensity-scale units)")
    lrtv_lambda_rank = traits.Range(0.0, 10.0, argstr="--lrtv-lambda-rank %g", desc="LRTV: low-rank weight")


class Upscale(_ImageCommand):
    """``mrsr upscale``: CNN or spline super-resolution."""

    subcommand = "upscale"
    input_spec = UpscaleInputSpec
    output_spec = ImageOutputSpec


class RegisterInputSpec(_Common):
    in_file = File(exists=True, mandatory=True, argstr="%s", position=0, desc="moving image")
    fixed_file = File(exists=True, mandatory=True, argstr="%s", position=1, desc="fixed image")
    out_file = File(argstr="%s", position=2, name_source=["in_file"], name_template="%s_space-fixed", keep_extension=True,
                    hash_files=False, desc="moving image resampled onto the fixed grid")
    transform = traits.Enum("rigid", "affine", argstr="--transform %s", desc="transform type")
    like_file = File(exists=True, argstr="--like %s", desc="resample onto this grid instead")
    transform_file = File(argstr="--save-transform %s", name_source=["in_file"], name_template="%s_xfm.tfm",
                          keep_extension=False, hash_files=False, desc="ITK transform to write")
    apply_transform = File(exists=True, argstr="--apply %s", desc="apply this saved transform instead of optimising")
    num_threads = traits.Int(1, usedefault=True, nohash=True, argstr="--threads %d", desc="threads")


class RegisterOutputSpec(ImageOutputSpec):
    transform_file = File(exists=True, desc="ITK transform (text)")


class Register(_ImageCommand):
    """``mrsr register``: rigid/affine Mattes-MI registration (SimpleITK)."""

    subcommand = "register"
    input_spec = RegisterInputSpec
    output_spec = RegisterOutputSpec


class TrainInputSpec(_GpuThreads):
    in_files = InputMultiObject(File(exists=True), argstr="%s", position=0, sep=" ",
                                desc="HR training images (or inputs of config_file)")
    out_file = File("model.safetensors", usedefault=True, argstr="--output %s", hash_files=False, desc="model file to write")
    config_file = File(exists=True, argstr="--config %s", desc="recipe TOML; the inputs set here override it")
    config_from = traits.Either(File(exists=True), traits.Str, argstr="--config-from %s",
                                desc="start from the recipe stored in this model")
    dry_run = traits.Bool(argstr="--dry-run", desc="print the resolved configuration and train nothing")
    arch = traits.Str(argstr="--arch %s", desc="architecture: a key of mrsr_cli.models.ARCHITECTURES (recnn, srcnn3d)")
    arch_params = traits.List(traits.Str, argstr="--arch-param %s...", desc="architecture parameters KEY=VALUE")
    layers = traits.Int(argstr="--layers %d", desc="ReCNN layers")
    filters = traits.Int(argstr="--filters %d", desc="ReCNN filters")
    kernel = traits.Int(argstr="--kernel %d", desc="ReCNN kernel")
    no_residual = traits.Bool(argstr="--no-residual", desc="disable the residual skip (ablation)")
    init = traits.Enum("msra", "xavier", argstr="--init %s", desc="weight initialisation")
    unit_fraction = traits.Float(argstr="--unit-fraction %g", desc="fraction of patches with factor 1")
    lr_decay = traits.Str(argstr="--lr-decay %s", desc="step decay GAMMA@EPOCHS, e.g. 0.5@4")
    tissue_maps = InputMultiObject(File(exists=True), argstr="--tissue-map %s...",
                                   desc="GM/WM maps of the first image (synthetic references, low-field contrast)")
    slice_thickness = traits.Float(argstr="--slice-thickness %g", desc="thick-slice training: slice thickness (mm)")
    slice_profile = traits.Enum("gaussian", "box", argstr="--slice-profile %s", desc="through-plane slice profile")
    degradation = traits.Enum("simulated", "low-field", argstr="--degradation %s", desc="training degradation")
    field_strength = traits.Float(argstr="--field-strength %g", desc="low-field degradation: the inputs' field (tesla)")
    source_field = traits.Float(argstr="--source-field %g", desc="the training images' field (tesla)")
    source_snr = traits.Float(argstr="--source-snr %g", desc="the training images' SNR at their 99.5th percentile")
    pairs = traits.List(traits.Str, argstr="--pairs %s...", desc="real pairs 'LR:HR' (or TSV files); no simulation")
    register_pairs = traits.Bool(argstr="--register-pairs", desc="rigidly register each pair's LR onto its HR")
    val_pairs = traits.List(traits.Str, argstr="--val-pairs %s...", desc="held-out pairs 'LR:HR' (or TSV files)")
    checkpoint_file = File(argstr="--checkpoint %s", hash_files=False, desc="checkpoint file to write")
    checkpoint_every = traits.Int(argstr="--checkpoint-every %d", desc="checkpoint every N iterations")
    resume_file = File(exists=True, argstr="--resume %s", desc="resume from this checkpoint")
    precision = traits.Enum("auto", "fp32", "bf16", argstr="--precision %s", desc="compute precision")
    log_file = File(argstr="--log %s", hash_files=False, desc="JSONL curve (default: next to the model)")
    model_name = traits.Str(argstr="--name %s", desc="model name recorded in the metadata")
    scales = traits.Str(argstr="--scales '%s'", desc="factor list, e.g. '2,2,2;2,2,3'")
    scale_range = traits.Str(argstr="--scale-range %s", desc="per-axis factor range lo:hi")
    voxel_size_range = traits.Str(argstr="--voxel-size-range %s", desc="random HR voxel size range lo:hi (mm)")
    voxel_size_input = traits.Bool(argstr="--voxel-size-input", desc="the output voxel size as input channels")
    coarsen_only = traits.Bool(argstr="--coarsen-only", desc="with voxel_size_range: never resample finer than the data")
    psf_input = traits.Bool(argstr="--psf-input", desc="the LR PSF's width as input channels (needs the psf augmentation)")
    new_channels_only = traits.Bool(argstr="--new-channels-only", desc="with init_from: train only the added input channels' weights")
    patch = traits.Int(argstr="--patch %d", desc="patch edge (voxels)")
    batch = traits.Int(argstr="--batch %d", desc="batch size")
    epochs = traits.Int(argstr="--epochs %d", desc="epochs")
    patches_per_epoch = traits.Int(argstr="--patches-per-epoch %d", desc="patches per epoch")
    lr = traits.Float(argstr="--lr %g", desc="Adam learning rate")
    loss = traits.Str(argstr="--loss '%s'", desc="loss expression, e.g. psnr, mse or 'l1+0.5*mse'")
    augment = traits.Str(argstr="--augment %s", desc="comma list: flip,permute,intensity,noise,bias,affine,sharpness,detail,psf")
    factor_input = traits.Bool(argstr="--factor-input", xor=["blind"], desc="give the network the scale factor (default)")
    blind = traits.Bool(argstr="--blind", xor=["factor_input"], desc="train blind to the factor (paper)")
    val_factor = traits.Str(argstr="--val-factor '%s'", desc="validation factor(s), e.g. '2,2,2;1,1,4'")
    seed = traits.Int(argstr="--seed %d", desc="random seed")
    max_minutes = traits.Float(argstr="--max-minutes %g", desc="time limit")
    reference_files = InputMultiObject(File(exists=True), argstr="--reference %s...", desc="one HR reference per image")
    synthetic_reference = traits.Bool(argstr="--synthetic-reference", xor=["reference_files"],
                                      desc="guided model trained with domain-randomised references")
    reference_encoding = traits.Enum("intensity", "edges", argstr="--reference-encoding %s",
                                     desc="how a guided model reads its reference: intensity (paper) or edges")
    val_files = InputMultiObject(File(exists=True), argstr="--val %s...", desc="validation images")
    init_from = traits.Either(File(exists=True), traits.Str, argstr="--init-from %s", desc="fine-tune from this model")


class TrainOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="trained model (.safetensors)")
    log_file = File(exists=True, desc="JSONL training curve")


class Train(_MrsrCommand):
    """``mrsr train``: train a (guided) ReCNN/SRCNN3D."""

    subcommand = "train"
    input_spec = TrainInputSpec
    output_spec = TrainOutputSpec

    def _list_outputs(self):
        out = os.path.abspath(self.inputs.out_file)
        log = os.path.abspath(self.inputs.log_file) if isdefined(self.inputs.log_file) else out.removesuffix(".safetensors") + ".log.jsonl"
        return {"out_file": out, "log_file": log}


class EvaluateInputSpec(_Common):
    reference_file = File(exists=True, argstr="%s", position=0, xor=["manifest_file"], requires=["in_files"],
                          desc="reference image")
    in_files = InputMultiObject(File(exists=True), argstr="%s", position=1, sep=" ", xor=["manifest_file"], desc="images to score")
    manifest_file = File(exists=True, argstr="--manifest %s", xor=["reference_file", "in_files"],
                         desc="TSV 'subject method reference image': compare methods across subjects")
    baseline = traits.Str(argstr="--baseline %s", requires=["manifest_file"], desc="method the others are tested against")
    plot_file = File(argstr="--plot %s", requires=["manifest_file"], hash_files=False, desc="box plot of PSNR per method (PNG)")
    mask_file = File(exists=True, argstr="--mask %s", desc="mask (default: head mask)")
    csv_file = File("metrics.csv", usedefault=True, argstr="--csv %s", hash_files=False, desc="CSV table to write")
    json = traits.Bool(True, usedefault=True, argstr="--json", desc="machine output (parsed into outputs)")


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
        outputs.psnr = [r["psnr"] for r in rows]
        outputs.ssim = [r["ssim"] for r in rows]
        outputs.csv_file = os.path.abspath(self.inputs.csv_file)
        return outputs


class FetchModelInputSpec(_Common):
    names = traits.List(traits.Str, argstr="%s", position=0, sep=" ", xor=["all_models"], desc="model names")
    list_models = traits.Bool(argstr="--list", desc="list the models in the index")
    verify = traits.Bool(argstr="--verify", desc="re-check the sha256 of cached models")
    allow_insecure = traits.Bool(argstr="--allow-insecure", desc="allow plain http to non-loopback hosts")
    timeout = traits.Float(argstr="--timeout %g", desc="network timeout (s)")
    retries = traits.Int(argstr="--retries %d", desc="download attempts")
    all_models = traits.Bool(argstr="--all", xor=["names"], desc="every model in the index")
    index = traits.Str(argstr="--index %s", desc="index path or URL")
    dest = Directory(argstr="--dest %s", desc="folder to pre-seed (default: the cache)")
    json = traits.Bool(True, usedefault=True, argstr="--json", desc="machine output (parsed into outputs)")


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
