"""Images and their geometry: NIfTI I/O (:mod:`.io`), grids and affines (:mod:`.geometry`), B-spline
resampling between grids (:mod:`.interpolate`), rigid/affine registration (:mod:`.register`) and BIDS
sidecars (:mod:`.bids`).  Nothing here knows about networks.
"""
