"""Statistics for comparing methods across subjects (DNSP Fig. 10 style): paired tests against a
baseline with Holm's correction, and a two-way ANOVA (method × subject, one score per cell).

Scores are a ``{method: {subject: value}}`` mapping.  Tests use the subjects that both methods
have; the ANOVA uses the subjects that every method has.  Below ``MIN_SUBJECTS`` common subjects
a test is skipped with a note rather than computed from too little.

Example::

    >>> scores = {"spline": {"a": 30.0, "b": 31.0, "c": 29.5}, "cnn": {"a": 33.0, "b": 34.5, "c": 32.0}}
    >>> r = paired_tests(scores, baseline="spline")["cnn"]
    >>> r["n"], round(r["mean_difference"], 3)
    (3, 3.0)
    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
"""

from __future__ import annotations

import numpy as np

MIN_SUBJECTS = 3


def holm(p_values: list) -> list:
    """Holm–Bonferroni adjusted p-values, in the order given."""
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = round(running, 12)
    return adjusted


def paired_tests(scores: dict, baseline: str) -> dict:
    """Each method against ``baseline`` on their common subjects: mean difference (method −
    baseline), paired t-test and Wilcoxon signed-rank (two-sided), p-values Holm-corrected over
    the methods tested.  Methods with too few common subjects get ``{"skipped": reason}``."""
    from scipy import stats

    results, tested = {}, []
    for method, by_subject in scores.items():
        if method == baseline:
            continue
        common = sorted(set(by_subject) & set(scores[baseline]))
        if len(common) < MIN_SUBJECTS:
            results[method] = {"n": len(common), "skipped": f"{len(common)} subject(s) in common with {baseline}; "
                                                             f"paired tests need at least {MIN_SUBJECTS}"}
            continue
        a = np.array([by_subject[s] for s in common])
        b = np.array([scores[baseline][s] for s in common])
        t = stats.ttest_rel(a, b)
        differences = a - b
        if np.allclose(differences, 0):
            w_stat, w_p = 0.0, 1.0
        else:
            w = stats.wilcoxon(a, b)
            w_stat, w_p = float(w.statistic), float(w.pvalue)
        results[method] = {"n": len(common), "mean_difference": float(differences.mean()),
                           "sd_difference": float(differences.std(ddof=1)), "t": float(t.statistic), "p_t": float(t.pvalue),
                           "wilcoxon_w": w_stat, "p_wilcoxon": w_p}
        tested.append(method)
    for key in ("p_t", "p_wilcoxon"):
        for method, p in zip(tested, holm([results[m][key] for m in tested])):
            results[method][f"{key}_holm"] = p
    return results


def two_way_anova(scores: dict) -> dict:
    """Two-way ANOVA without replication (method × subject) on the subjects every method has:
    F and p for the method and subject effects, degrees of freedom, sums of squares."""
    from scipy import stats

    methods = list(scores)
    common = sorted(set.intersection(*(set(v) for v in scores.values()))) if methods else []
    if len(methods) < 2 or len(common) < MIN_SUBJECTS:
        return {"skipped": f"{len(methods)} method(s) and {len(common)} subject(s) with every method; "
                           f"the ANOVA needs 2 methods and {MIN_SUBJECTS} subjects"}
    y = np.array([[scores[m][s] for m in methods] for s in common], dtype=np.float64)  # subjects × methods
    n, k = y.shape
    grand = y.mean()
    ss_method = n * ((y.mean(axis=0) - grand) ** 2).sum()
    ss_subject = k * ((y.mean(axis=1) - grand) ** 2).sum()
    ss_error = ((y - grand) ** 2).sum() - ss_method - ss_subject
    df_method, df_subject, df_error = k - 1, n - 1, (k - 1) * (n - 1)
    ms_error = ss_error / df_error
    f_method = (ss_method / df_method) / ms_error if ms_error > 0 else float("inf")
    f_subject = (ss_subject / df_subject) / ms_error if ms_error > 0 else float("inf")
    return {"subjects": len(common), "methods": methods,
            "method": {"F": float(f_method), "p": float(stats.f.sf(f_method, df_method, df_error)), "df": df_method,
                       "sum_sq": float(ss_method)},
            "subject": {"F": float(f_subject), "p": float(stats.f.sf(f_subject, df_subject, df_error)), "df": df_subject,
                        "sum_sq": float(ss_subject)},
            "residual": {"df": df_error, "sum_sq": float(ss_error)}}
