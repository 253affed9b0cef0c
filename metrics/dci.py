"""Disentanglement, completeness and informativeness (Eastwood & Williams 2018, "A Framework for
the Quantitative Evaluation of Disentangled Representations"), as disentanglement_lib's
``evaluation/metrics/dci.py`` defines them (Locatello et al. 2019).

One classifier per factor predicts the factor from all codes; its feature importances form the
column of an importance matrix R ``[d, K]``; disentanglement and completeness are entropies of
R's rows and columns, informativeness the classifiers' test accuracy.

disentanglement_lib's classifier is scikit-learn's ``GradientBoostingClassifier`` with its
defaults: 100 stages of one depth-3 regression tree per class, exact splits. On dSprites'
factors that is 113 trees per stage (3 + 6 + 40 + 32 + 32 classes) on 10,000 points: 384 s on
two CPU threads. The default here is the same model fitted by LightGBM
(:data:`LIGHTGBM_PARAMS`: 100 rounds, learning rate 0.1, trees of depth 3, native softmax
multiclass, histogram splits): 8 s for the same fit, with D, C and I within 0.02 of the
reference's (benchmarks/perf/test_disentanglement_speed.py); ``importance="gbt-sklearn"`` keeps
the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import entropy

from latentbench.metrics.factor_info import check_varying, train_test_points

#: The LightGBM model of ``importance="gbt"``: scikit-learn ``GradientBoostingClassifier``'s
#: defaults (100 stages, learning rate 0.1, depth 3, every point and every code in every tree, a
#: leaf may hold one point) in LightGBM's names, with its own regularisers off (no L2 on leaf
#: values, no minimum gain), and one thread per model: the models of the factors run in
#: parallel instead (see :func:`dci`), so a result does not depend on the number of cores.
#: ``deterministic`` and a fixed histogram layout make repeated fits bit-identical. Boosting
#: starts from equal class scores, not from the class prior as scikit-learn's does: LightGBM
#: folds that prior into its first trees' values, which would hide their gradient sums from
#: :func:`_residual_gains`; on the balanced factors of a uniform grid draw the two starts
#: coincide.
LIGHTGBM_PARAMS = {
    "n_estimators": 100,
    "learning_rate": 0.1,
    "max_depth": 3,
    "num_leaves": 8,
    "min_child_samples": 1,
    "min_child_weight": 1e-3,
    "min_split_gain": 0.0,
    "reg_lambda": 0.0,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "boost_from_average": False,
    "deterministic": True,
    "force_row_wise": True,
    "n_jobs": 1,
    "verbose": -1,
}

#: L1 strength of ``importance="lasso"`` (scikit-learn's objective ‖y − Xw‖²/(2N) + α‖w‖₁) on
#: standardised codes and the 0/1 indicator of each factor value. A code enters a value's model
#: only if its covariance with the indicator exceeds α (the optimality condition at w = 0): a
#: correlation above α/√(p(1 − p)) for a value of frequency p, 0.042 for a value of a 3-valued
#: factor and 0.128 for one of 40 values. A linear code of a 40-valued factor correlates up to
#: ~0.27 with the indicators of its extreme values and stays in for them; a noise code's
#: correlation is ~1/√N (0.012 at 6,667 training points, 3.5 of those below the smallest
#: threshold), so noise drops out at disentanglement_lib's sample sizes. At a few hundred
#: points it does not (α = 0.01 let it in at 6,000).
LASSO_ALPHA = 0.02

IMPORTANCES = ("gbt", "gbt-sklearn", "lasso")


def _workers(jobs: int) -> int:
    """Models to fit at once: the threads this process is allotted (``torch.get_num_threads``,
    which the harness sets per worker process and the tests to 1), at most one per job."""
    return max(1, min(jobs, torch.get_num_threads()))


@dataclass(frozen=True)
class _Fit:
    importance: np.ndarray  # [d], normalised to sum 1 (or all 0)
    train_accuracy: float
    test_accuracy: float


def _normalised(importance: np.ndarray) -> np.ndarray:
    total = importance.sum()
    return importance / total if total > 0 else importance


def _residual_gains(booster: object, d: int) -> np.ndarray:
    r"""Per code, the sum over every split of every tree of the drop in squared error of the
    gradient residuals it fits: scikit-learn's impurity importance, on LightGBM's trees.

    A split of a node with gradient sum G over N points into (G_L, N_L) and (G_R, N_R) lowers
    N · Var(residual) by :math:`G_L^2/N_L + G_R^2/N_R - G^2/N` (≥ 0): exactly what
    scikit-learn's ``feature_importances_`` add up for a gradient-boosting tree, whose
    residuals are the negative gradients. LightGBM's own "gain" is the second-order
    :math:`G_L^2/H_L + G_R^2/H_R - G^2/H`, which divides by the softmax Hessians p(1 − p): late
    in boosting they are small, and the splits that fit noise gain weight. On noisy codes that
    gave D and C 0.05–0.11 below the reference's; this measure of the same trees is within
    about 0.03 (see the tests).

    G comes from the leaves — a leaf's value is −shrinkage · G/H — and is summed up the tree;
    the dump's internal values are rounded to 6 digits, its leaf values are not.
    """
    gains = np.zeros(d)

    def walk(node: dict, scale: float) -> tuple[float, int]:
        if "leaf_value" in node:
            return node["leaf_value"] * node["leaf_weight"] * scale, node["leaf_count"]
        g_left, n_left = walk(node["left_child"], scale)
        g_right, n_right = walk(node["right_child"], scale)
        total, n = g_left + g_right, n_left + n_right
        gain = g_left**2 / n_left + g_right**2 / n_right - total**2 / n
        gains[node["split_feature"]] += max(gain, 0.0)  # ≥ 0 but for rounding
        return total, n

    for tree in booster.dump_model()["tree_info"]:
        if "split_feature" in tree["tree_structure"]:  # a lone leaf (nothing left to fit) adds 0
            walk(tree["tree_structure"], 1.0 / tree["shrinkage"])
    return gains


def _fit_lightgbm(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                  seed: int) -> _Fit:
    # Imported where used, as scikit-learn is throughout metrics/: together they take ~1.3 s
    # to import, which every `import latentbench.metrics` would otherwise pay.
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(**LIGHTGBM_PARAMS, random_state=seed).fit(x, y)
    # Divided by the sum over codes, as scikit-learn's feature_importances_, so that every
    # column of R sums to 1 as in the reference.
    return _Fit(_normalised(_residual_gains(model.booster_, x.shape[1])),
                float(np.mean(model.predict(x) == y)),
                float(np.mean(model.predict(x_test) == y_test)))


def _fit_sklearn_gbt(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                     seed: int) -> _Fit:
    from sklearn.ensemble import GradientBoostingClassifier

    # disentanglement_lib's GradientBoostingClassifier(): its defaults, a seed for the order in
    # which tied splits are found. feature_importances_ already sum to 1.
    model = GradientBoostingClassifier(random_state=seed).fit(x, y)
    return _Fit(np.abs(model.feature_importances_), float(np.mean(model.predict(x) == y)),
                float(np.mean(model.predict(x_test) == y_test)))


def _fit_lasso(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
               seed: int) -> _Fit:
    from sklearn.linear_model import Lasso

    # Standardised codes, so that a coefficient's size says how much the code matters, not how
    # it is scaled (an L1 penalty on raw codes would favour codes with a large spread).
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1.0
    classes = np.unique(y)
    targets = (y[:, None] == classes[None, :]).astype(float)
    model = Lasso(alpha=LASSO_ALPHA, random_state=seed).fit((x - mean) / std, targets)
    coef = np.atleast_2d(model.coef_)  # [classes, d]

    def accuracy(codes: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(classes[model.predict((codes - mean) / std).argmax(1)] == labels))

    return _Fit(_normalised(np.abs(coef).sum(0)), accuracy(x, y), accuracy(x_test, y_test))


_FITS: dict[str, Callable[..., _Fit]] = {
    "gbt": _fit_lightgbm, "gbt-sklearn": _fit_sklearn_gbt, "lasso": _fit_lasso}


def disentanglement_per_code(importance: np.ndarray) -> np.ndarray:
    r"""Each code's disentanglement :math:`1 - H_K(P_{i\cdot})`, ``[d]``, with
    :math:`P_{ij} = (R_{ij} + 10^{-11}) / \sum_k (R_{ik} + 10^{-11})` and entropy in base K
    (disentanglement_lib's ``disentanglement_per_code``; the 1e-11 makes a zero row uniform, so
    an unused code scores 0)."""
    return 1.0 - entropy(importance.T + 1e-11, base=importance.shape[1])


def completeness_per_factor(importance: np.ndarray) -> np.ndarray:
    r"""Each factor's completeness :math:`1 - H_d(\tilde P_{\cdot j})`, ``[K]``, with
    :math:`\tilde P_{ij} = (R_{ij} + 10^{-11}) / \sum_l (R_{lj} + 10^{-11})` and entropy in base
    d (disentanglement_lib's ``completeness_per_code``, which is per factor)."""
    return 1.0 - entropy(importance + 1e-11, base=importance.shape[0])


def _weights(importance: np.ndarray, axis: int) -> np.ndarray:
    # disentanglement_lib weights by the share of all importance; an all-zero R weights evenly.
    if importance.sum() == 0.0:
        importance = np.ones_like(importance)
    return importance.sum(axis=axis) / importance.sum()


def disentanglement_score(importance: np.ndarray) -> float:
    r"""Disentanglement of an importance matrix R ``[d, K]`` (d, K ≥ 2, entries ≥ 0):

    .. math::
        D = \sum_i \rho_i \big(1 - H_K(P_{i\cdot})\big), \qquad
        \rho_i = \sum_j R_{ij} \Big/ \sum_{lj} R_{lj}

    (:func:`disentanglement_per_code`). 1 when every code is important for one factor only, 0
    when each spreads its importance evenly over all factors, and for R = 0."""
    return float(np.sum(disentanglement_per_code(importance) * _weights(importance, 1)))


def completeness_score(importance: np.ndarray) -> float:
    r"""Completeness of an importance matrix R ``[d, K]`` (d, K ≥ 2, entries ≥ 0):

    .. math::
        C = \sum_j \tilde\rho_j \big(1 - H_d(\tilde P_{\cdot j})\big), \qquad
        \tilde\rho_j = \sum_i R_{ij} \Big/ \sum_{il} R_{il}

    (:func:`completeness_per_factor`), as disentanglement_lib weights it. With columns
    normalised to sum 1, as :func:`dci` makes them, :math:`\tilde\rho_j = 1/K` and C is the
    plain mean over factors. 1 when each factor is captured by one code; a factor shared
    equally by two of d codes scores 1 − log 2 / log d."""
    return float(np.sum(completeness_per_factor(importance) * _weights(importance, 0)))


@dataclass(frozen=True)
class DCIResult:
    """DCI scores and the importance matrix they come from.

    Attributes:
        disentanglement: D in [0, 1] (:func:`disentanglement_score`).
        completeness: C in [0, 1] (:func:`completeness_score`).
        informativeness: the mean over factors of the classifiers' test accuracy, in [0, 1]
            (disentanglement_lib's ``informativeness_test``).
        train_accuracy: the mean over factors of their training accuracy
            (``informativeness_train``).
        importance: float64 ``[d, K]``, R; each column sums to 1 (0 where a factor's classifier
            uses no code).
        per_code_disentanglement: float64 ``[d]`` (:func:`disentanglement_per_code`).
        per_factor_completeness: float64 ``[K]`` (:func:`completeness_per_factor`).
        test_accuracies: float64 ``[K]``, each factor's test accuracy.
        train_accuracies: float64 ``[K]``.
        n_train: training points.
        n_test: test points.
        method: the ``importance`` asked for.
    """

    disentanglement: float
    completeness: float
    informativeness: float
    train_accuracy: float
    importance: np.ndarray
    per_code_disentanglement: np.ndarray
    per_factor_completeness: np.ndarray
    test_accuracies: np.ndarray
    train_accuracies: np.ndarray
    n_train: int
    n_test: int
    method: str


def dci(codes: np.ndarray, factors: np.ndarray, test_codes: np.ndarray | None = None,
        test_factors: np.ndarray | None = None, *, importance: str = "gbt",
        seed: int = 0) -> DCIResult:
    r"""Disentanglement, completeness and informativeness of ``codes`` for ``factors``.

    For each factor k a classifier is fitted on the training points to predict the factor's
    grid index from all d codes; the normalised importances of the codes in it form column k of
    R ``[d, K]``, then

    .. math::
        D = \sum_i \rho_i \big(1 - H_K(P_{i\cdot})\big), \quad
        C = \sum_j \tilde\rho_j \big(1 - H_d(\tilde P_{\cdot j})\big), \quad
        I = \frac1K \sum_j \mathrm{acc}_j^{\text{test}}

    with P (R normalised per code), ρ (each code's share of all importance), P̃ (R per factor),
    ρ̃ (each factor's share, 1/K here) and the 1e-11 of disentanglement_lib
    (:func:`disentanglement_score`, :func:`completeness_score`). Informativeness is the
    classifiers' test accuracy averaged over factors, as disentanglement_lib reports it (the
    paper's I is a prediction error; higher is better here).

    Importances (``importance``):

    - ``"gbt"`` (default): gradient-boosted trees fitted by LightGBM with
      :data:`LIGHTGBM_PARAMS`, the configuration of disentanglement_lib's scikit-learn model,
      multiclass softmax natively (one tree per class per round, as scikit-learn). A code's
      importance is what scikit-learn's is — the drop in squared error of the gradient
      residuals over all its splits (:func:`_residual_gains`), not LightGBM's second-order
      "gain" — divided by the sum over codes. LightGBM still grows its trees by second-order
      gain on at most 255 histogram bins per code where scikit-learn fits residuals with exact
      thresholds, so the trees differ a little; on small problems the importances agree to
      about 0.05 per entry and D, C and I to about 0.03 (measured in the tests). Two exactly
      equal codes tie in every split: LightGBM gives all of it to the first, scikit-learn, which
      shuffles the codes at each split, about half to each, so completeness differs there.
    - ``"gbt-sklearn"``: disentanglement_lib's ``GradientBoostingClassifier()`` itself
      (``feature_importances_``: mean impurity decrease, summing to 1). The reference; about
      50× slower at disentanglement_lib's sizes, 7× at 1,000 points.
    - ``"lasso"``: a linear probe. sklearn ``Lasso`` (alpha :data:`LASSO_ALPHA`) regresses the
      one-hot indicators of the factor's values on the standardised codes, the prediction is
      the value with the largest output, and a code's importance is the sum over values of its
      absolute coefficients, divided by the sum over codes. Lasso rather than L1 logistic
      regression: Eastwood & Williams' own linear model, deterministic coordinate descent that
      fits 40 classes in milliseconds where multinomial SAGA needs seconds and may not
      converge, and the same API across scikit-learn versions (L1 logistic regression moved
      from ``penalty`` to ``l1_ratio`` in 1.8).

    The K classifiers are independent and are fitted on a thread pool sized to this process's
    torch threads, largest factors first, one thread each: results do not depend on the number
    of threads.

    Args:
        codes: float ``[N, d]``, d ≥ 2; the training points when a test set is given.
        factors: int ``[N, K]`` grid indices ≥ 0, K ≥ 2; every factor takes two values or more
            in the training points.
        test_codes, test_factors: the test set, ``[M, d]`` and ``[M, K]``; both or neither.
            Without them the given points are split 2/3 training, 1/3 test by a permutation
            drawn from ``seed`` (disentanglement_lib draws 10,000 + 5,000 points).
        importance: ``"gbt"``, ``"gbt-sklearn"`` or ``"lasso"``.
        seed: seed of the split and of the classifiers' tie-breaking.

    Returns:
        :class:`DCIResult`.

    Raises:
        ValueError: inputs that fail the checks of
            :func:`~latentbench.metrics.factor_info.train_test_points`; d or K below 2 (an
            entropy in base 1); a factor with one value in the training points; an unknown
            ``importance``.
    """
    if importance not in _FITS:
        raise ValueError(f"importance must be one of {', '.join(IMPORTANCES)}, got "
                         f"{importance!r}")
    x, y, x_test, y_test = train_test_points(codes, factors, test_codes, test_factors, seed)
    if x.shape[1] < 2:
        raise ValueError(f"codes needs at least 2 codes (completeness is an entropy in base d), "
                         f"got {x.shape[1]}")
    if y.shape[1] < 2:
        raise ValueError(f"factors needs at least 2 factors (disentanglement is an entropy in "
                         f"base K), got {y.shape[1]}")
    check_varying(y, "factors (training points)")
    fit = _FITS[importance]
    # Largest factors first: their models take longest, and a pool fed those last idles.
    order = sorted(range(y.shape[1]), key=lambda k: -len(np.unique(y[:, k])))
    with ThreadPoolExecutor(_workers(len(order))) as pool:
        fitted = dict(zip(order, pool.map(
            lambda k: fit(x, y[:, k], x_test, y_test[:, k], seed), order), strict=True))
    fits = [fitted[k] for k in range(y.shape[1])]
    matrix = np.stack([f.importance for f in fits], axis=1)
    test_acc = np.array([f.test_accuracy for f in fits])
    train_acc = np.array([f.train_accuracy for f in fits])
    per_code = disentanglement_per_code(matrix)
    per_factor = completeness_per_factor(matrix)
    for array in (matrix, test_acc, train_acc, per_code, per_factor):
        array.flags.writeable = False
    return DCIResult(disentanglement_score(matrix), completeness_score(matrix),
                     float(test_acc.mean()), float(train_acc.mean()), matrix, per_code,
                     per_factor, test_acc, train_acc, len(x), len(x_test), importance)
