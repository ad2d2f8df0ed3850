"""Scoring images: PSNR/SSIM and the head mask (:mod:`.metrics`), paired tests and ANOVA across
subjects (:mod:`.statistics`), and the ``evaluate`` verb (:mod:`.evaluate`).
"""
