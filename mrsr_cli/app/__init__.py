"""The command line and its neighbours: the typer CLI (:mod:`.cli`), the file-level verbs it calls
(:mod:`.verbs`), Nipype interfaces (:mod:`.interfaces`), the BIDS workflow (:mod:`.workflows`)
and the PNG preview (:mod:`.preview`).
"""
