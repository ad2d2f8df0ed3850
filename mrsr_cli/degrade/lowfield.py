"""A low-field acquisition simulated from a high-field image (DNSP §IV-E: 1.5 T from 3 T).

Two physical effects of a lower main field B₀, each stated so a user can disagree with it:

* **SNR.** SNR ∝ B₀ (the linear law of the body-noise regime that clinical fields are in;
  Pohmann et al. 2016 measured B₀^1.65 above 3 T, so the linear law is the conservative one).
  The source image has ``source_snr`` (signal = its 99.5th percentile, the unit of
  ``simulate --noise``; default :data:`DEFAULT_SOURCE_SNR`), the target SNR is
  ``source_snr × B_target / B_source``, and Rician noise of the missing variance is added:
  ``σ = S · sqrt(1/SNR_target² − 1/SNR_source²)``.
* **T1 contrast.** T1 lengthens with B₀.  Per tissue T1(B₀) = T1(1.5 T) · (B₀ / 1.5 T)^β, the
  power law through the 1.5 T and 3 T values of Stanisz et al. 2005 (MRM 54:507, Table 1: white
  matter 884 / 1084 ms, grey matter 1124 / 1820 ms); CSF is taken as 4000 ms at every field
  (Rooney et al. 2007, MRM 57:308, found CSF T1 independent of B₀).  A T1-weighted image is
  modelled as saturation recovery, S ∝ 1 − exp(−TR/T1) with TR :data:`T1W_TR_MS`, so each
  tissue's intensity is scaled by (1 − exp(−TR/T1_target)) / (1 − exp(−TR/T1_source)),
  relative to white matter's (whose intensity is kept).  Voxels mix tissues by their
  probability maps (GM, WM and optionally CSF); without maps only the SNR changes.

The resolution loss of a low-field protocol is the ordinary observation model
(``simulate --factor/--voxel-size`` together with ``--field-strength``).

Example::

    >>> lf = LowField(1.5, 3.0)
    >>> round(lf.snr_ratio, 2), round(lf.noise_fraction(), 4)
    (0.5, 0.0433)
    >>> round(lf.tissue_scale()["gm"], 3)   # grey matter brighter relative to white at 1.5 T
    1.279
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrsr_cli.errors import UsageError

FIELD_RANGE_T = (0.05, 7.0)  # where the power law is used; outside, a usage error
DEFAULT_SOURCE_SNR = 40.0  # SNR of a 3 T 1 mm T1w scan at its 99.5th percentile (an assumption; --source-snr)
T1W_TR_MS = 500.0  # effective recovery time of the T1-weighted model
T1_MS = {  # tissue: (T1 at 1.5 T, T1 at 3 T) in ms
    "wm": (884.0, 1084.0),  # Stanisz et al. 2005, Table 1
    "gm": (1124.0, 1820.0),  # Stanisz et al. 2005, Table 1
    "csf": (4000.0, 4000.0),  # field-independent (Rooney et al. 2007)
}
TISSUE_ORDER = ("gm", "wm", "csf")  # order of the --tissue-map images


def t1_ms(tissue: str, field_t: float) -> float:
    """T1 (ms) of ``tissue`` at ``field_t`` tesla: the power law through the two Stanisz values."""
    t15, t3 = T1_MS[tissue]
    beta = np.log(t3 / t15) / np.log(2.0)
    return float(t15 * (field_t / 1.5) ** beta)


def check_field(value: float, what: str) -> float:
    lo, hi = FIELD_RANGE_T
    if not lo <= value <= hi:
        raise UsageError(f"unknown {what} {value:g} T: the low-field model covers {lo:g}–{hi:g} T")
    return float(value)


@dataclass(frozen=True)
class LowField:
    """The change from ``source_field`` to ``field`` (tesla), for a source of ``source_snr``."""

    field: float
    source_field: float = 3.0
    source_snr: float = DEFAULT_SOURCE_SNR

    def __post_init__(self):
        check_field(self.field, "field strength")
        check_field(self.source_field, "source field strength")
        if self.field > self.source_field:
            raise UsageError(f"field strength {self.field:g} T is above the source's {self.source_field:g} T; "
                             "the low-field model only lowers the field")
        if not self.source_snr > 0:
            raise UsageError(f"source SNR must be > 0, got {self.source_snr:g}")

    @property
    def snr_ratio(self) -> float:
        return self.field / self.source_field

    def noise_fraction(self) -> float:
        """σ of the added Rician noise, as a fraction of the image's 99.5th percentile."""
        target_snr = self.source_snr * self.snr_ratio
        return float(np.sqrt(max(1.0 / target_snr**2 - 1.0 / self.source_snr**2, 0.0)))

    def tissue_scale(self) -> dict:
        """Intensity factor per tissue, relative to white matter's."""
        def signal(tissue, field_t):
            return 1.0 - np.exp(-T1W_TR_MS / t1_ms(tissue, field_t))

        raw = {t: signal(t, self.field) / signal(t, self.source_field) for t in TISSUE_ORDER}
        return {t: float(v / raw["wm"]) for t, v in raw.items()}

    def contrast_map(self, tissue: np.ndarray) -> np.ndarray:
        """Voxel-wise intensity factor from probability maps ``tissue`` (K, ...) in
        :data:`TISSUE_ORDER` (GM, WM[, CSF]); the rest of each voxel keeps its intensity."""
        scale = self.tissue_scale()
        factor = np.ones(tissue.shape[1:], dtype=np.float32)
        for k, name in enumerate(TISSUE_ORDER[: tissue.shape[0]]):
            factor += np.clip(tissue[k], 0, 1).astype(np.float32) * np.float32(scale[name] - 1.0)
        return factor

    def describe(self) -> dict:
        return {"field_strength_T": self.field, "source_field_T": self.source_field, "source_snr": self.source_snr,
                "snr_ratio": self.snr_ratio, "added_noise_fraction": self.noise_fraction(),
                "tissue_scale": self.tissue_scale(), "model": "SNR ∝ B0; T1 power law (Stanisz 2005), saturation "
                f"recovery TR {T1W_TR_MS:g} ms"}
