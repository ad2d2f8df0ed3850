"""evaluate --manifest: scores per subject, paired tests, ANOVA (checked against scipy), the plot."""

import json

import numpy as np
import pytest
from scipy import stats

from conftest import make_affine, phantom, run_cli, save_nifti
from mrsr_cli.evaluation.statistics import holm, paired_tests, two_way_anova

NOISE = {"spline": 6.0, "lrtv": 4.0, "cnn": 2.0}


def make_cases(tmp_path, subjects=4, methods=NOISE, header="subject\tmethod\treference\timage"):
    """Per subject an HR phantom and, per method, the phantom plus noise of that method's level."""
    lines = [header]
    for s in range(subjects):
        hr = phantom((20, 22, 18), seed=s)
        ref = save_nifti(tmp_path / f"sub-{s}_T1w.nii.gz", hr, make_affine())
        for m, level in methods.items():
            img = hr + np.random.default_rng([s, len(m)]).normal(0, level * (1 + 0.1 * s), hr.shape)
            save_nifti(tmp_path / f"sub-{s}_{m}.nii.gz", img, make_affine())
            lines.append(f"sub-{s}\t{m}\t{ref.name}\tsub-{s}_{m}.nii.gz")  # relative to the manifest's folder
    manifest = tmp_path / "cases.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_paired_tests_and_anova_agree_with_scipy():
    rng = np.random.default_rng(3)
    base = rng.normal(30, 2, 8)
    scores = {"spline": dict(enumerate(base)), "a": dict(enumerate(base + rng.normal(1, 0.5, 8))),
              "b": dict(enumerate(base + rng.normal(0.1, 0.5, 8)))}
    result = paired_tests(scores, "spline")
    for m in ("a", "b"):
        x, y = np.array(list(scores[m].values())), base
        assert result[m]["p_t"] == pytest.approx(stats.ttest_rel(x, y).pvalue)
        assert result[m]["p_wilcoxon"] == pytest.approx(stats.wilcoxon(x, y).pvalue)
    assert [result["a"]["p_t_holm"], result["b"]["p_t_holm"]] == pytest.approx(holm([result["a"]["p_t"], result["b"]["p_t"]]))
    # with two methods the ANOVA's method F is the paired t statistic squared, with the same p
    two = {"spline": scores["spline"], "a": scores["a"]}
    anova = two_way_anova(two)
    assert anova["method"]["F"] == pytest.approx(result["a"]["t"] ** 2)
    assert anova["method"]["p"] == pytest.approx(result["a"]["p_t"])
    assert anova["residual"]["df"] == 7
    # Holm on a textbook case
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_manifest_end_to_end_with_json_and_plot(tmp_path):
    manifest = make_cases(tmp_path)
    plot, table = tmp_path / "f.png", tmp_path / "scores.csv"
    proc = run_cli("evaluate", "--manifest", manifest, "--baseline", "spline", "--json", "--plot", plot, "--csv", table, check=0)
    result = json.loads(proc.stdout)
    assert len(result["rows"]) == 12 and set(result["summary"]) == set(NOISE)
    # each row is what a plain evaluate of that image gives
    one = json.loads(run_cli("evaluate", tmp_path / "sub-2_T1w.nii.gz", tmp_path / "sub-2_cnn.nii.gz", "--json", check=0).stdout)[0]
    row = next(r for r in result["rows"] if r["subject"] == "sub-2" and r["method"] == "cnn")
    assert row["psnr"] == pytest.approx(one["psnr"])
    # less noise, higher PSNR, significantly so over 4 subjects
    assert result["summary"]["cnn"]["psnr_mean"] > result["summary"]["lrtv"]["psnr_mean"] > result["summary"]["spline"]["psnr_mean"]
    assert result["tests"]["psnr"]["cnn"]["mean_difference"] > 0 and result["tests"]["psnr"]["cnn"]["p_t_holm"] < 0.05
    assert result["anova"]["psnr"]["method"]["p"] < 0.05 and result["anova"]["psnr"]["subjects"] == 4
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and table.read_text().count("\n") == 13
    assert "two-way ANOVA" in run_cli("evaluate", "--manifest", manifest, check=0).stdout  # results on stdout (issue 35)


def test_too_few_subjects_skip_the_tests_with_a_note(tmp_path):
    manifest = make_cases(tmp_path, subjects=2)
    result = json.loads(run_cli("evaluate", "--manifest", manifest, "--json", check=0).stdout)
    assert "skipped" in result["tests"]["psnr"]["cnn"] and "skipped" in result["anova"]["psnr"]
    assert any("cnn: tests skipped" in n for n in result["notes"])


@pytest.mark.parametrize("case, message, code", [
    ("missing-column", "lacks column(s) reference", 2),
    ("duplicate", "has method 'cnn' twice", 2),
    ("missing-file", "not found", 1),
    ("grid", "not on the reference grid", 1),
    ("baseline", "baseline 'bicubic' is not a method", 2),
])
def test_bad_manifests_are_one_line_errors_and_write_nothing(tmp_path, case, message, code):
    manifest = make_cases(tmp_path, subjects=3, header="subject\tmethod\treferenc\timage" if case == "missing-column"
                          else "subject\tmethod\treference\timage")
    text = manifest.read_text()
    if case == "duplicate":
        manifest.write_text(text + "sub-0\tcnn\tsub-0_T1w.nii.gz\tsub-0_cnn.nii.gz\n")
    elif case == "missing-file":
        manifest.write_text(text.replace("sub-1_lrtv.nii.gz", "sub-1_absent.nii.gz"))
    elif case == "grid":
        save_nifti(tmp_path / "sub-1_lrtv.nii.gz", phantom((20, 22, 18)), make_affine((1.0, 1.0, 1.2)))
    plot = tmp_path / "f.png"
    extra = ["--baseline", "bicubic"] if case == "baseline" else []
    proc = run_cli("evaluate", "--manifest", manifest, "--plot", plot, *extra)
    assert proc.returncode == code and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not plot.exists()
