"""The Python API: ``upscale``, ``simulate`` and ``evaluate`` on in-memory nibabel images, for
notebooks and other tools (as ANTsPyNet and TorchIO are used), through the same code as the CLI:
the same checks, the same methods, the same header rules; nothing is written.

>>> import nibabel as nib, numpy as np
>>> import mrsr_cli
>>> hr = nib.Nifti1Image(np.random.default_rng(0).random((24, 24, 24), dtype=np.float32) * 100, np.eye(4))
>>> lr = mrsr_cli.simulate(hr, factor=2, acquisition="kspace")
>>> lr.shape, [float(v) for v in lr.header.get_zooms()]
((12, 12, 12), [2.0, 2.0, 2.0])
>>> up = mrsr_cli.upscale(lr, factor=2, method="spline")
>>> up.shape, up.extra["mrsr"]["Method"], bool(np.allclose(up.affine, hr.affine))
((24, 24, 24), 'spline', True)
>>> [round(row["psnr"], 1) > 0 for row in mrsr_cli.evaluate(hr, up)]
[True]

``upscale`` takes the options of ``mrsr upscale`` as keywords (``model``, ``ensemble``,
``consistency``, ``input_fwhm`` in mm, ``reference`` as a path, ...) and the engine's
(``device``, ``precision``, ``memory_limit``, ``threads``, ``tile_size``); the sidecar's record
is in the result's ``extra["mrsr"]``.
"""

from __future__ import annotations

ENGINE_KEYS = ("device", "precision", "tile_size", "memory_limit", "threads")


def _grid_of(like):
    """The grid of ``like``: a nibabel image, or a NIfTI path (its header alone)."""
    from mrsr_cli.data.geometry import Grid
    from mrsr_cli.data.io import load_grid

    if like is None or isinstance(like, (str, bytes)) or hasattr(like, "__fspath__"):
        return like if like is None else load_grid(like, what="like")
    return Grid(tuple(int(n) for n in like.shape[:3]), like.affine)


def upscale(image, *, factor=None, voxel_size=None, like=None, method: str = "cnn", **options):
    """``image`` (a nibabel NIfTI image) super-resolved onto the grid of exactly one of ``factor``
    (a number or one per axis), ``voxel_size`` (mm) or ``like`` (an image or a path); a float32
    ``nibabel.Nifti1Image`` with the sidecar's record in ``extra["mrsr"]``.  ``sidecar``: the
    input's parsed JSON sidecar (e.g. dcm2niix's), read for its acquisition as ``mrsr upscale``
    reads the file next to its input."""
    from mrsr_cli.app.verbs import engine_option, target_grid, upscale_volume
    from mrsr_cli.data.geometry import parse_factor, parse_voxel_size
    from mrsr_cli.data.io import to_image, volume_from_image

    engine = {k: options.pop(k) for k in ENGINE_KEYS if k in options}
    if options.get("input_fwhm") is not None:  # one number for all axes, as --input-fwhm 2 is
        from mrsr_cli.data.geometry import parse_triplet

        fwhm = options["input_fwhm"]
        options["input_fwhm"] = parse_triplet(",".join(str(float(v)) for v in
                                                       (fwhm if hasattr(fwhm, "__len__") else [fwhm])), "input_fwhm")
    options.update(engine_option(method, progress=False, **engine))
    volume = volume_from_image(image)
    target = target_grid(volume, factor=None if factor is None else parse_factor(factor, "factor"),
                         voxel_size=None if voxel_size is None else parse_voxel_size(voxel_size, "voxel_size"),
                         like=_grid_of(like))
    out, record = upscale_volume(volume, target, method=method, **options)
    result = to_image(out, target.affine, volume.codes)
    result.extra["mrsr"] = record
    return result


def simulate(image, *, factor=None, voxel_size=None, fwhm=None, psf: str = "gaussian", noise: float = 0.0,
             seed: int | None = None, slice_thickness: float | None = None, slice_profile: str | None = None,
             acquisition: str = "psf", window: str | None = None, partial_fourier: float = 1.0, bias: float = 0.0,
             gamma: float = 1.0):
    """A simulated lower-resolution acquisition of ``image``, as ``mrsr simulate`` makes it (without
    the low-field options); the simulation record, as its sidecar says it, in ``extra["mrsr"]``
    (give it to :func:`upscale` as ``sidecar=`` to say that the input is this simulation)."""
    from mrsr_cli.app.verbs import simulate_volume
    from mrsr_cli.data.geometry import parse_factor, parse_triplet, parse_voxel_size
    from mrsr_cli.data.io import to_image, volume_from_image
    from mrsr_cli.degrade.simulate import check_simulation

    fwhm = None if fwhm is None else parse_triplet(fwhm, "fwhm")
    check_simulation(fwhm=fwhm, psf=psf, noise=noise, slice_thickness=slice_thickness, slice_profile=slice_profile,
                     seed=seed, acquisition=acquisition, window=window, partial_fourier=partial_fourier, bias=bias,
                     gamma=gamma)
    volume = volume_from_image(image)
    lr, grid, info = simulate_volume(volume, factor=None if factor is None else parse_factor(factor, "factor"),
                                     voxel_size=None if voxel_size is None else parse_voxel_size(voxel_size, "voxel_size"),
                                     fwhm=fwhm, psf=psf, noise=noise, seed=seed, slice_thickness=slice_thickness,
                                     slice_profile=slice_profile, acquisition=acquisition, window=window,
                                     partial_fourier=partial_fourier, bias=bias, gamma=gamma)
    result = to_image(lr, grid.affine, volume.codes, slice_axis=info.get("slice_axis"))
    result.extra["mrsr"] = {"Operation": "simulate", **info}
    return result


def evaluate(reference, *images, mask=None) -> list[dict]:
    """PSNR and 3-D SSIM of each of ``images`` against ``reference`` (nibabel images on its grid)
    inside ``mask`` (an image) or a head mask: one dict per image, as ``mrsr evaluate --json``."""
    from mrsr_cli.data.io import volume_from_image
    from mrsr_cli.evaluation.evaluate import evaluate_volumes

    tests = ((f"image {i}", volume_from_image(img, f"image {i}")) for i, img in enumerate(images))
    return evaluate_volumes(volume_from_image(reference, "reference"), tests,
                            None if mask is None else ("mask", volume_from_image(mask, "mask")))
