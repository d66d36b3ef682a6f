"""ICC against Shrout & Fleiss' worked example, hand-derived McGraw & Wong cases,
and a plain per-feature ANOVA written out loop by loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radflow.model.icc import FORMS, icc, icc_long

#: Shrout & Fleiss' (1979) worked example: six targets (rows) rated by four judges (columns).
SF = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float
)
#: Their published coefficients, to two decimals.
SF_ICC = {
    "ICC(1,1)": 0.17,
    "ICC(2,1)": 0.29,
    "ICC(3,1)": 0.71,
    "ICC(1,k)": 0.44,
    "ICC(2,k)": 0.62,
    "ICC(3,k)": 0.91,
}
#: Their published ANOVA mean squares: BMS, WMS, JMS, EMS.
SF_MS = {"BMS": 11.24, "WMS": 6.26, "JMS": 32.49, "EMS": 1.02}
#: 95% intervals for the same data as printed by R's psych::ICC (Revelle), which
#: implements the Shrout & Fleiss / McGraw & Wong F intervals; to 2 decimals.
SF_CI = {
    "ICC(1,1)": (-0.13, 0.72),
    "ICC(2,1)": (0.02, 0.76),
    "ICC(3,1)": (0.34, 0.95),
    "ICC(1,k)": (-0.88, 0.91),
    "ICC(2,k)": (0.07, 0.93),
    "ICC(3,k)": (0.68, 0.99),
}


def test_shrout_fleiss_worked_example():
    table = icc(SF).set_index("form")
    assert list(table.index) == list(FORMS)
    for form, published in SF_ICC.items():
        assert round(table.loc[form, "icc"], 2) == published, form
    for form, (lo, hi) in SF_CI.items():
        assert round(table.loc[form, "ci_low"], 2) == lo, form
        assert round(table.loc[form, "ci_high"], 2) == hi, form
    # F tests from their mean squares: BMS/WMS on (5, 18) df, BMS/EMS on (5, 15) df.
    assert table.loc["ICC(1,1)", "F"] == pytest.approx(SF_MS["BMS"] / SF_MS["WMS"], rel=2e-3)
    assert table.loc["ICC(3,1)", "F"] == pytest.approx(SF_MS["BMS"] / SF_MS["EMS"], rel=5e-3)
    assert table.loc["ICC(1,1)", ["df1", "df2"]].tolist() == [5, 18]
    assert table.loc["ICC(2,1)", ["df1", "df2"]].tolist() == [5, 15]
    assert (table["n_subjects"] == 6).all() and (table["n_raters"] == 4).all()


def test_mcgraw_wong_absolute_agreement_versus_consistency():
    """Rater 2 always scores one more than rater 1 (a systematic bias).

    By hand: MSR = 8, MSC = 1.5, MSE = 0, MSW = 0.5 (n = 3, k = 2), so
    consistency ICC(C,1) = ICC(3,1) = 1 while absolute agreement
    ICC(A,1) = ICC(2,1) = 8 / (8 + 2 * 1.5 / 3) = 8/9, and the one-way
    ICC(1) = (8 - 0.5) / (8 + 0.5) = 15/17. Average measures: ICC(k) = 15/16,
    ICC(A,k) = 8 / (8 + 1.5 / 3) = 16/17, ICC(C,k) = 1.
    """
    table = icc([[1, 2], [3, 4], [5, 6]]).set_index("form")["icc"]
    expected = {
        "ICC(1,1)": 15 / 17,
        "ICC(2,1)": 8 / 9,
        "ICC(3,1)": 1.0,
        "ICC(1,k)": 15 / 16,
        "ICC(2,k)": 16 / 17,
        "ICC(3,k)": 1.0,
    }
    for form, value in expected.items():
        assert table[form] == pytest.approx(value, rel=1e-12), form


def test_mcgraw_wong_no_rater_effect_makes_two_way_forms_equal():
    """With equal rater means (MSC = 0 < MSE) ICC(A,1) and ICC(C,1) differ only by the
    MSC - MSE term of the denominator: ICC(A,1) = (MSR - MSE) / (MSR + (k-1) MSE - k MSE / n).

    Data [[1, 3], [3, 1], [5, 7], [7, 5]], grand mean 4, both rater means 4; by hand
    SST = 40, SSR = 2 * (4 + 4 + 4 + 4) = 32, SSC = 0, SSE = 8, so MSR = 32/3,
    MSE = 8/3 (3 df) and MSW = (SSC + SSE) / 4 = 2.
    """
    msr, mse, msw, n, k = 32 / 3, 8 / 3, 2.0, 4, 2
    table = icc([[1, 3], [3, 1], [5, 7], [7, 5]]).set_index("form")["icc"]
    assert table["ICC(3,1)"] == pytest.approx((msr - mse) / (msr + (k - 1) * mse))
    assert table["ICC(2,1)"] == pytest.approx(
        (msr - mse) / (msr + (k - 1) * mse + k * (0 - mse) / n)
    )
    assert table["ICC(1,1)"] == pytest.approx((msr - msw) / (msr + (k - 1) * msw))


def _naive(ratings: np.ndarray) -> dict[str, float]:
    """ANOVA sums of squares with explicit loops, then the textbook formulas."""
    n, k = ratings.shape
    grand = sum(sum(r) for r in ratings) / (n * k)
    ssr = sum(k * (sum(ratings[i]) / k - grand) ** 2 for i in range(n))
    ssc = sum(n * (sum(ratings[:, j]) / n - grand) ** 2 for j in range(k))
    sst = sum((ratings[i, j] - grand) ** 2 for i in range(n) for j in range(k))
    msr, msc = ssr / (n - 1), ssc / (k - 1)
    mse, msw = (sst - ssr - ssc) / ((n - 1) * (k - 1)), (sst - ssr) / (n * (k - 1))
    return {
        "ICC(1,1)": (msr - msw) / (msr + (k - 1) * msw),
        "ICC(2,1)": (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n),
        "ICC(3,1)": (msr - mse) / (msr + (k - 1) * mse),
        "ICC(1,k)": (msr - msw) / msr,
        "ICC(2,k)": (msr - mse) / (msr + (msc - mse) / n),
        "ICC(3,k)": (msr - mse) / msr,
    }


def test_vectorised_over_features_with_missing_ratings_matches_naive_loops():
    rng = np.random.default_rng(7)
    subjects, raters, features = 12, 5, 7
    truth = rng.normal(0, 3, size=(subjects, 1, features))
    ratings = (
        truth
        + rng.normal(0, 1, size=(subjects, raters, features))
        + rng.normal(0, 0.5, size=(1, raters, 1))
    )
    ratings[2, 1, 3] = np.nan  # subject 2 drops out of feature 3 only
    ratings[[5, 6], 0, 4:] = np.nan  # subjects 5 and 6 out of features 4-6
    names = [f"f{j}" for j in range(features)]
    table = icc(ratings, features=names)
    assert len(table) == features * len(FORMS)
    for j, name in enumerate(names):
        keep = ~np.isnan(ratings[:, :, j]).any(axis=1)
        expected = _naive(ratings[keep, :, j])
        got = table[table["feature"] == name].set_index("form")
        assert (got["n_subjects"] == keep.sum()).all()
        for form in FORMS:
            assert got.loc[form, "icc"] == pytest.approx(expected[form], rel=1e-10)
    assert table.loc[table["feature"] == "f3", "n_subjects"].iloc[0] == subjects - 1
    assert table.loc[table["feature"] == "f5", "n_subjects"].iloc[0] == subjects - 2


def test_interval_covers_and_narrows_with_confidence():
    table90 = icc(SF, confidence=0.90).set_index("form")
    table95 = icc(SF).set_index("form")
    assert (table90["ci_low"] > table95["ci_low"]).all()
    assert (table90["ci_high"] < table95["ci_high"]).all()
    assert ((table95["ci_low"] <= table95["icc"]) & (table95["icc"] <= table95["ci_high"])).all()


def test_undefined_and_perfect_cases():
    constant = np.ones((5, 3))
    assert icc(constant)["icc"].isna().all()
    perfect = np.tile(np.arange(5.0)[:, None], (1, 3))
    table = icc(perfect)
    assert (
        (table["icc"] == 1).all() and (table["ci_low"] == 1).all() and (table["ci_high"] == 1).all()
    )
    # A feature with fewer than two complete subjects: NaN, not an error.
    ratings = np.stack([SF, SF.copy()], axis=-1)
    ratings[1:, 0, 1] = np.nan
    table = icc(ratings)
    assert table.loc[table["feature"] == "1", "icc"].isna().all()
    assert table.loc[table["feature"] == "1", "n_subjects"].eq(1).all()


def test_long_input_equals_array_input():
    rows = [
        {"subject": f"roi{i}", "rater": f"pert{j}", "feature": feature, "value": SF[i, j] * scale}
        for feature, scale in (("a", 1.0), ("b", 2.5))
        for i in range(6)
        for j in range(4)
    ]
    long = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # order must not matter
    table = icc_long(long)
    assert list(table["feature"].unique()) == list(pd.unique(long["feature"]))
    expected = icc(SF)
    for feature in ("a", "b"):
        got = table[table["feature"] == feature].reset_index(drop=True)
        np.testing.assert_allclose(got["icc"], expected["icc"], rtol=1e-12)
        np.testing.assert_allclose(got["ci_low"], expected["ci_low"], rtol=1e-9)


@pytest.mark.parametrize(
    "ratings, message",
    [
        (np.ones((1, 3)), "at least 2 subjects and 2 raters"),
        (np.ones((3, 1)), "at least 2 subjects and 2 raters"),
        (np.ones(3), "must have shape"),
        ([["a", "b"], ["c", "d"]], "numeric"),
        ([[1.0, np.inf], [2.0, 3.0]], "infinite"),
    ],
)
def test_bad_ratings(ratings, message):
    with pytest.raises(ValueError, match=message):
        icc(ratings)


def test_bad_arguments():
    with pytest.raises(ValueError, match="confidence must lie in"):
        icc(SF, confidence=95)
    with pytest.raises(ValueError, match="features has 2 names for 1 features"):
        icc(SF, features=["a", "b"])
    with pytest.raises(ValueError, match=r"no column\(s\) \['rater'\]"):
        icc_long(pd.DataFrame({"subject": [1], "feature": ["a"], "value": [1.0]}))
    twice = pd.DataFrame(
        {"subject": [1, 1], "rater": [1, 1], "feature": ["a", "a"], "value": [1.0, 2.0]}
    )
    with pytest.raises(ValueError, match="repeat a"):
        icc_long(twice)
