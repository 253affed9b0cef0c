"""Separated attribute predictability (Kumar et al. 2018, "Variational Inference of Disentangled
Latent Concepts from Unlabeled Observations", Section 3), as disentanglement_lib's
``evaluation/metrics/sap_score.py`` defines it (Locatello et al. 2019).

For each code and factor, how well that one code alone predicts the factor; SAP is the mean over
factors of the gap between the best two codes. A factor that no single code predicts, or that
two codes predict equally well, contributes 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentbench.metrics.factor_info import (
    check_codes,
    check_factors,
    check_varying,
    train_test_points,
)

#: disentanglement_lib's classifier of one code and one discrete factor.
SVC_C = 0.01


@dataclass(frozen=True)
class SAPResult:
    """The SAP score and its score matrix.

    Attributes:
        score: SAP, the mean of ``per_factor``; in [0, 1], higher is better.
        per_factor: float64 ``[K]``, each factor's gap between its best and second-best code.
        score_matrix: float64 ``[d, K]``, how well code i alone predicts factor j: test
            accuracy (discrete) or squared correlation (continuous).
        n_train: points the scores were fitted on.
        n_test: points the accuracies were measured on (0 for continuous factors).
        continuous: which of the two scores.
    """

    score: float
    per_factor: np.ndarray
    score_matrix: np.ndarray
    n_train: int
    n_test: int
    continuous: bool


def _squared_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """cov(x_i, y_j)² / (var x_i · var y_j), ``[d, K]``; 0 where var x_i ≤ 1e-12."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    cov = xc.T @ yc / (len(x) - 1)
    var_x, var_y = (xc * xc).sum(0) / (len(x) - 1), (yc * yc).sum(0) / (len(y) - 1)
    scores = np.zeros(cov.shape)
    # disentanglement_lib's guard: a (nearly) constant code predicts nothing. Factors that are
    # constant were refused before, so var_y > 0.
    live = var_x > 1e-12
    scores[live] = cov[live] ** 2 / (var_x[live, None] * var_y[None, :])
    return scores


def _accuracies(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
                ) -> np.ndarray:
    """Test accuracy of a LinearSVC on code i alone for factor j, ``[d, K]``."""
    from sklearn.svm import LinearSVC  # where used: scikit-learn takes ~1.3 s to import

    scores = np.empty((x.shape[1], y.shape[1]))
    for i in range(x.shape[1]):
        for j in range(y.shape[1]):
            # dual=False: the same objective as disentanglement_lib's (its scikit-learn's default
            # dual=True), solved in the primal, which is the right form for one feature and many
            # points — 2.5× faster here, and newer scikit-learn's own "auto" choice.
            model = LinearSVC(C=SVC_C, class_weight="balanced", dual=False)
            model.fit(x[:, i:i + 1], y[:, j])
            scores[i, j] = np.mean(model.predict(x_test[:, i:i + 1]) == y_test[:, j])
    return scores


def sap(codes: np.ndarray, factors: np.ndarray, test_codes: np.ndarray | None = None,
        test_factors: np.ndarray | None = None, *, continuous: bool = False,
        seed: int = 0) -> SAPResult:
    r"""SAP score of ``codes`` for ``factors``:

    .. math::
        \mathrm{SAP} = \frac1K \sum_{j=1}^K \big(S_{(1)j} - S_{(2)j}\big)

    with :math:`S_{(1)j} \ge S_{(2)j}` the two largest entries of column j of the score matrix
    S ``[d, K]``:

    - discrete factors (``continuous=False``, disentanglement_lib's setting for every data
      set): :math:`S_{ij}` is the test accuracy of ``LinearSVC(C=0.01,
      class_weight="balanced")`` fitted on code i alone to predict factor j's grid index. A
      linear one-vs-rest classifier on one feature separates few classes, so on a factor with
      many values even the factor itself as its code scores far below 1 (its value there is
      the ceiling), and the codes are used unscaled, as in the reference, so a code's scale
      matters through C;
    - continuous factors (``continuous=True``): :math:`S_{ij} = \mathrm{cov}(z_i, v_j)^2 /
      (\mathrm{var}\, z_i\, \mathrm{var}\, v_j)`, the R² of a linear fit, on the training points
      (normaliser N − 1); 0 for a code with variance ≤ 1e-12. No test set is used: without
      one, all given points are training points.

    Kumar et al. use the balanced accuracy of a threshold for a discrete factor; this is
    disentanglement_lib's classifier, which Locatello et al. report.

    Args:
        codes: float ``[N, d]``, d ≥ 2; the training points when a test set is given.
        factors: int ``[N, K]`` grid indices ≥ 0; every factor takes two values or more in the
            training points.
        test_codes, test_factors: the test set of the discrete score, ``[M, d]`` and
            ``[M, K]``; both or neither. Without them the given points are split 2/3
            training, 1/3 test by a permutation drawn from ``seed`` (disentanglement_lib: 10,000
            and 5,000 points). Checked but not used for continuous factors, which are scored on
            ``codes`` alone.
        continuous: score the factors as continuous (squared correlation) instead of discrete.
        seed: seed of the split.

    Returns:
        :class:`SAPResult`.

    Raises:
        ValueError: inputs that fail the checks of
            :func:`~latentbench.metrics.factor_info.train_test_points`, fewer than 2 codes, a
            factor with one value in the training points.
    """
    if continuous and test_codes is None and test_factors is None:
        x = check_codes(codes)  # nothing is held out: every point fits
        y = check_factors(factors, len(x))
    else:
        x, y, x_test, y_test = train_test_points(codes, factors, test_codes, test_factors, seed)
    if x.shape[1] < 2:
        raise ValueError(f"codes needs at least 2 codes for a gap between the best two, got "
                         f"{x.shape[1]}")
    check_varying(y, "factors (training points)")
    if continuous:
        matrix = _squared_correlations(x, y.astype(np.float64))
    else:
        matrix = _accuracies(x, y, x_test, y_test)
    top = np.sort(matrix, axis=0)[::-1]
    per_factor = top[0] - top[1]
    matrix.flags.writeable = per_factor.flags.writeable = False
    return SAPResult(float(per_factor.mean()), per_factor, matrix, len(x),
                     0 if continuous else len(x_test), continuous)
