"""How a low-resolution image is made from a high-resolution one: the observation model and its
exact adjoint (:mod:`.observation`), the ``simulate`` verb's pipeline (:mod:`.simulate`) and the
low-field acquisition (:mod:`.lowfield`).
"""
