"""Data consistency: make an upscaled image reproduce its input through the observation model.

A network's output ``x₀`` on the high-resolution (HR) grid, degraded by the observation model
``A = D↓ B`` (:class:`~mrsr_cli.degrade.observation.ObservationModel`: the PSF, then sampling at the
low-resolution (LR) voxel centres), should give back the input ``y``; it does only roughly.
:func:`back_project` moves ``x₀`` towards the set ``{x : A x = y}`` along ``range(Aᵀ)`` by
Craig's method (conjugate gradients on ``A Aᵀ z = y − A x₀``, ``x = x₀ + Aᵀ z``).  Each
iteration minimises ``‖x − x̂‖`` over its Krylov space, ``x̂`` the projection of ``x₀`` onto
that set; when ``y`` is noiseless and ``A`` is the true model, the true image is in that set
and the error to it falls at every iteration (Pythagoras: the correction lies in
``range(Aᵀ)``, the error left of ``x̂`` in ``null(A)``).  The idea is iterative
back-projection (Irani & Peleg 1991), used in MRI upsampling by Manjón et al. 2010.

Noise in ``y`` is not signal to fit: iterations stop by the discrepancy principle (Morozov)
once the residual's root mean square is at the input's noise level, estimated from the input
itself (:func:`estimate_noise_sigma`), so a noisy input is left nearly or exactly as the
network made it.  The output's edges: ``upscale`` writes zeros outside the input's field of
view (it does not extrapolate), so the LR voxels whose PSF reaches there are left out of the
data term and those output voxels are never corrected (:func:`in_view_operator`).  A wrong PSF
is the remaining risk: the model must be the one that made the input (``upscale
--input-fwhm/--input-psf`` tell it).

Units: intensities are the input's; the noise level is a standard deviation in those units.
Grids follow :class:`~mrsr_cli.data.geometry.Grid` (voxel→world affine in mm); the LR grid's axes
must be parallel to the HR grid's.

Example::

    >>> import numpy as np
    >>> from mrsr_cli.data.geometry import Grid, scaled_grid
    >>> from mrsr_cli.degrade.observation import ObservationModel
    >>> hr = Grid((24, 24, 24), np.eye(4))
    >>> A = ObservationModel(hr, scaled_grid(hr, (2, 2, 2)))
    >>> truth = np.random.default_rng(0).random((24, 24, 24), dtype=np.float32)
    >>> y = A.forward(truth)
    >>> guess = np.full_like(truth, truth.mean())
    >>> fixed, info = back_project(guess, y, A.axis_matrices(), iterations=5, noise_sigma=0.0)
    >>> bool(np.linalg.norm(fixed - truth) < np.linalg.norm(guess - truth))
    True
"""

from __future__ import annotations

import logging

import numpy as np

from mrsr_cli.errors import UsageError

log = logging.getLogger("mrsr")

# At most this many iterations: on the validation templates (noiseless ×2), the residual falls
# to a few per mille of the input's norm by then and later ones change the PSNR by < 0.01 dB.
MAX_AUTO_ITERATIONS = 5
# Stop once rms(y − A x) <= DISCREPANCY · σ̂ (Morozov's τ; 1 = the noise level itself).
DISCREPANCY = 1.0
# Output-sized float32 volumes held at once: the output and its correction, Aᵀ's intermediates
# (measured: 4.5 on top of the output for a 0.5 mm whole head), rounded up.
CONSISTENCY_VOLUMES = 6
MAD_TO_SIGMA = 1.0 / 0.6745  # a Gaussian's standard deviation over its median absolute deviation
SECOND_DIFFERENCE = np.array([1.0, -2.0, 1.0], dtype=np.float32) / np.float32(np.sqrt(6.0))
OUT_OF_VIEW_WEIGHT = 1e-3  # an LR voxel whose PSF puts more weight than this outside the output's view is left out
FOREGROUND = 0.1  # voxels brighter than this fraction of the 99.5th percentile estimate the noise


def parse_mode(value: str | int | None) -> int | str:
    """``auto`` (stop at the noise level, at most :data:`MAX_AUTO_ITERATIONS`), ``off`` (0) or a
    number of iterations that ignores noise (0..50); a :class:`UsageError` otherwise.

    >>> parse_mode("auto"), parse_mode("off"), parse_mode("3")
    ('auto', 0, 3)
    """
    if value is None or value == "auto":
        return "auto"
    if value == "off":
        return 0
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"--consistency must be auto, off or a number of iterations, got {value!r}") from None
    if not 0 <= n <= 50:
        raise UsageError(f"--consistency iterations must be in 0..50, got {n}")
    return n


def estimate_noise_sigma(volume: np.ndarray) -> float:
    """The noise standard deviation of ``volume`` (its intensity units), from the median absolute
    value of its third-order detail (the second difference ``[1, −2, 1]/√6`` along each axis in
    turn: white noise of σ gives σ, while anatomy that is locally smooth up to a quadratic gives
    0) over the voxels brighter than :data:`FOREGROUND` of the 99.5th percentile (Donoho's MAD
    estimator; the background of magnitude images is Rayleigh, not Gaussian, so it is left out).
    Axes of fewer than three voxels are skipped.  On the validation templates simulated at ×2
    without noise it reads 0.05-0.15 % of the 99.5th percentile, with noise of 0.5-2 % that
    noise to within 0.1 %.

    >>> rng = np.random.default_rng(0)
    >>> abs(estimate_noise_sigma(100 + rng.normal(0, 2.0, (40, 40, 40)).astype(np.float32)) - 2.0) < 0.15
    True
    """
    from scipy import ndimage

    data = np.asarray(volume, dtype=np.float32)
    detail = data
    for axis in range(3):
        if data.shape[axis] >= 3:
            detail = ndimage.correlate1d(detail, SECOND_DIFFERENCE, axis=axis, mode="reflect", output=np.float32)
    bright = ndimage.uniform_filter(data, 3, mode="reflect") > FOREGROUND * np.percentile(data, 99.5)
    values = np.abs(detail[bright] if bright.sum() >= 100 else detail.ravel())
    return float(np.median(values) * MAD_TO_SIGMA)


def in_view_operator(model) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The observation model ``model`` restricted to what the output can explain:
    ``(matrices, rows)``, one dense matrix per axis (:meth:`~mrsr_cli.degrade.observation.ObservationModel.axis_matrices`)
    with the columns of HR voxels outside the input's field of view set to 0 (``upscale`` writes
    zeros there and the correction leaves them so), and the indices of the LR voxels kept per
    axis: those whose PSF puts less than :data:`OUT_OF_VIEW_WEIGHT` of its weight on such
    voxels.  An LR edge voxel whose PSF reaches anatomy the output does not have would
    otherwise push that anatomy's signal into its neighbours."""
    matrices, rows = [], []
    for matrix, outside in zip(model.axis_matrices(), model.outside_lr_fov()):
        weight = np.abs(matrix)
        keep = np.flatnonzero(weight[:, outside].sum(axis=1) <= OUT_OF_VIEW_WEIGHT * weight.sum(axis=1))
        matrix = matrix[keep].copy()
        matrix[:, outside] = 0.0
        matrices.append(np.ascontiguousarray(matrix))
        rows.append(keep)
    return matrices, rows


def back_project(x0: np.ndarray, y: np.ndarray, matrices, *, iterations: int = MAX_AUTO_ITERATIONS,
                 noise_sigma: float = 0.0, discrepancy: float = DISCREPANCY):
    """``x₀`` (HR grid) corrected towards ``A x = y`` by at most ``iterations`` steps of Craig's
    method, stopping once ``rms(y − A x) <= discrepancy · noise_sigma``.

    ``matrices``: ``A`` as one matrix per axis from ``x₀``'s grid to ``y``'s
    (:meth:`~mrsr_cli.degrade.observation.ObservationModel.axis_matrices` or :func:`in_view_operator`).
    Returns ``(x float32, info)``, ``info`` the sidecar's ``DataConsistency`` record: iterations
    run, the noise level used and the residual's rms before and after (input intensity units).
    """
    from mrsr_cli.degrade.observation import apply_axis_matrices

    def forward(v):
        return apply_axis_matrices(v, matrices)

    def adjoint(v):
        return apply_axis_matrices(v, matrices, transpose=True)

    y = np.asarray(y, dtype=np.float32)
    x = np.array(x0, dtype=np.float32, copy=True)
    residual = y - forward(x)
    target = discrepancy * noise_sigma

    def rms(v) -> float:
        return float(np.sqrt(np.mean(np.square(v, dtype=np.float64))))

    before = rms(residual)
    direction = residual.copy()
    energy = float(np.vdot(residual, residual))
    done = 0
    while done < iterations and rms(residual) > target and energy > 0:
        step_hr = adjoint(direction)
        curvature = float(np.vdot(step_hr, step_hr))
        if curvature <= 0:
            break
        alpha = np.float32(energy / curvature)
        x += alpha * step_hr
        residual -= alpha * forward(step_hr)
        new_energy = float(np.vdot(residual, residual))
        direction = residual + np.float32(new_energy / energy) * direction
        energy = new_energy
        done += 1
    info = {"Iterations": done, "NoiseSigma": round(float(noise_sigma), 6),
            "ResidualRMSBefore": round(before, 6), "ResidualRMSAfter": round(rms(residual), 6)}
    return x, info


SIMULATE_PSF_RECORD = "gaussian, FWHM = LR voxel size"  # train._psf_record's words for simulate's PSF alone


def knows_input_psf(meta: dict, told: bool) -> bool:
    """Whether ``auto`` may trust the observation model: the user gave the input's PSF
    (``told``), or the model (metadata ``meta``) was trained on ``mrsr simulate``'s PSF alone or
    reads the PSF as input.  Models trained on real pairs, thick-slice profiles, low-field
    degradation or blind PSF augmentation learned a degradation that simulate's PSF does not
    describe.

    >>> knows_input_psf({"training": {"psf": "gaussian, FWHM = LR voxel size"}}, told=False)
    True
    >>> knows_input_psf({"training": {"psf": "none: real LR/HR pairs"}}, told=False)
    False
    """
    record = str(meta.get("training", {}).get("psf", ""))
    return told or record == SIMULATE_PSF_RECORD or "given as input" in record


def make_consistent(data: np.ndarray, volume, target, mode, *, fwhm_mm=None, psf: str = "gaussian",
                    psf_known: bool = True, memory_limit: int | None = None):
    """The upscaled ``data`` (on grid ``target``) of input ``volume`` (an :class:`~mrsr_cli.data.io.Volume`)
    made consistent with it under ``mode`` (:func:`parse_mode`) and the input PSF ``psf`` of
    ``fwhm_mm`` mm per input axis (default: its voxel size, as ``mrsr simulate`` makes it).

    Returns ``(data, info)`` with ``info`` the sidecar's ``DataConsistency`` record (``{}`` when
    off).  ``auto`` leaves the data as it is when ``psf_known`` is false (:func:`knows_input_psf`);
    a fixed number of iterations runs all the same.  A target whose axes are not parallel to the
    input's cannot have the separable model, and ``auto`` over ``memory_limit`` (bytes; about
    :data:`CONSISTENCY_VOLUMES` output-sized float32 volumes are needed) is not run: the data is
    returned as it is, with a warning (a fixed number over the limit is an error).
    """
    from mrsr_cli.degrade.observation import input_model
    from mrsr_cli.errors import MrsrError
    from mrsr_cli.budget import over_memory_limit

    mode = parse_mode(mode)
    if mode == 0:
        return data, {}
    if mode == "auto" and not psf_known:
        log.info("data consistency skipped: the model was not trained on mrsr simulate's PSF; give --input-fwhm/"
                 "--input-psf to run it")
        return data, {"Mode": "auto", "Iterations": 0, "Skipped": "the input's PSF is unknown to this model"}
    said = over_memory_limit("data consistency", CONSISTENCY_VOLUMES, target.shape, memory_limit)
    if said:
        if mode != "auto":
            raise MrsrError(said)
        log.warning("%s: skipped", said)
        return data, {"Mode": "auto", "Iterations": 0, "Skipped": "over the memory limit"}
    try:
        model = input_model(target, volume.grid, fwhm_mm, psf)
    except MrsrError:
        log.warning("data consistency skipped: the output grid's axes are not parallel to the input's")
        return data, {"Mode": "auto" if mode == "auto" else "fixed", "Iterations": 0,
                      "Skipped": "output axes not parallel to the input's"}
    sigma = estimate_noise_sigma(volume.data) if mode == "auto" else 0.0
    iterations = MAX_AUTO_ITERATIONS if mode == "auto" else mode
    matrices, rows = in_view_operator(model)
    if not all(len(r) for r in rows):
        log.warning("data consistency skipped: no input voxel lies wholly inside the output's view")
        return data, {"Mode": "auto" if mode == "auto" else "fixed", "Iterations": 0,
                      "Skipped": "no input voxel wholly in view"}
    out, info = back_project(data, volume.data[np.ix_(*rows)], matrices, iterations=iterations, noise_sigma=sigma)
    info["InputVoxelsUsed"] = int(np.prod([len(r) for r in rows]))
    if info["Iterations"] and volume.data.min() >= 0:  # a corrected magnitude image stays non-negative
        np.clip(out, 0, None, out=out)
    log.info("data consistency: %d iterations, residual rms %.4g -> %.4g (noise %.4g)", info["Iterations"],
             info["ResidualRMSBefore"], info["ResidualRMSAfter"], sigma)
    return out, {"Mode": "auto" if mode == "auto" else "fixed", **info}
