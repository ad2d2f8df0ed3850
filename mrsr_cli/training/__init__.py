"""Training networks: the configuration (:mod:`.config`), patch sampling (:mod:`.sampler`),
augmentations (:mod:`.augment`), losses and priors (:mod:`.losses`, :mod:`.priors`),
checkpoints, validation, network surgery for ``--init-from``, real pairs, recipes,
distributed data parallel, and the loop that ties them (:mod:`.loop`).
"""
