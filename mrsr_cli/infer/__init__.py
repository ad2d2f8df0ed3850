"""Running a network over a volume: device and precision (:mod:`.device`), exact halo tiling with
the flip self-ensemble over a predictor (:mod:`.tiling`) and the engine that feeds a prepared
network its input channels (:mod:`.engine`).
"""
