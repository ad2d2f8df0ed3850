"""What a scanner's BIDS sidecar says about how the input was made.

dcm2niix writes a JSON sidecar next to each NIfTI it converts, with the DICOM's acquisition
fields under their BIDS names. ``MRAcquisitionType`` alone fixes the family of the input's PSF,
which the image itself does not reveal reliably (benchmarks/experiments/33-blind):

* ``3D``: every axis was encoded in k-space, so the image is a Cartesian k-space truncation
  (``--input-psf kspace``): full contrast up to the voxel's Nyquist frequency, where simulate's
  Gaussian keeps 41 %. A network that assumes the Gaussian over-sharpens such an image.
* ``2D``: in plane, the same; through plane, the excitation's slice profile, ``SliceThickness``
  mm wide (centres ``SpacingBetweenSlices`` apart: a gap when larger). It is told as
  :data:`SLICE_PROFILE` of that width along the slice axis (``SliceEncodingDirection``, else the
  third voxel axis, where dcm2niix stacks slices); the in-plane axes are told their voxel size.

A sidecar without ``MRAcquisitionType`` (a simulated image, mrsr's own outputs, a template)
tells nothing. Units: mm.

    >>> told = psf_from_sidecar({"MRAcquisitionType": "3D"}, (1.0, 1.0, 1.2))
    >>> told.input_psf, told.input_fwhm
    ('kspace', None)
    >>> told = psf_from_sidecar({"MRAcquisitionType": "2D", "SliceThickness": 4, "SpacingBetweenSlices": 5}, (0.9, 0.9, 5.0))
    >>> told.input_psf, told.input_fwhm
    ('sinc', (0.9, 0.9, 4.0))
    >>> psf_from_sidecar({"ConversionSoftware": "mrsr"}, (1.0, 1.0, 1.0)) is None
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from mrsr_cli.degrade.observation import KSPACE

SLICE_PROFILE = "sinc"  # a 2-D acquisition's slice profile: +0.58 dB over nothing told, box +0.19 (round 33, NOTES.md §6)
_AXES = {"i": 0, "j": 1, "k": 2}


@dataclass(frozen=True)
class ToldPSF:
    """The input PSF a sidecar tells: ``upscale``'s ``input_psf`` and ``input_fwhm`` (mm per voxel
    axis, ``None``: none applies), and why (``reason``, for the output's sidecar and the log)."""

    input_psf: str
    input_fwhm: tuple[float, float, float] | None
    reason: str


def _positive(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def psf_from_sidecar(sidecar: dict | None, voxel_size) -> ToldPSF | None:
    """The :class:`ToldPSF` that ``sidecar`` (the input's parsed BIDS JSON) records for an image of
    ``voxel_size`` mm, or ``None`` when it records no acquisition type."""
    kind = str((sidecar or {}).get("MRAcquisitionType", "")).upper()
    if kind == "3D":
        return ToldPSF(KSPACE, None, "MRAcquisitionType 3D: a k-space truncation along every axis")
    if kind != "2D":
        return None
    direction = str(sidecar.get("SliceEncodingDirection", "k")).strip("-")
    axis = _AXES.get(direction, 2)
    thickness = _positive(sidecar.get("SliceThickness")) or float(voxel_size[axis])
    fwhm = [float(v) for v in voxel_size]
    fwhm[axis] = thickness
    spacing = _positive(sidecar.get("SpacingBetweenSlices"))
    gap = f", {spacing:g} mm apart" if spacing else ""
    return ToldPSF(SLICE_PROFILE, tuple(fwhm),
                   f"MRAcquisitionType 2D: {SLICE_PROFILE} slice profile of {thickness:g} mm{gap} along voxel axis {axis}")
