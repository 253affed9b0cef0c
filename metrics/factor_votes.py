"""The two disentanglement scores that vote with batches sharing one factor: the FactorVAE score
(Kim & Mnih 2018, "Disentangling by Factorising") and the β-VAE score (Higgins et al. 2017,
"β-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework"), as
disentanglement_lib's ``factor_vae.py`` and ``beta_vae.py`` define them (Locatello et al. 2019).

Batches from a pool. disentanglement_lib renders fresh images for every vote: 15,000 votes of
64 images for the FactorVAE score (960,000 images, plus 10,000 for the variances) and 15,000
votes of 64 pairs for the β-VAE score (1.9 million), far more than a CPU encodes in the minute
an evaluation may take. Here the batches are drawn from one given pool of encoded points
instead (:func:`fixed_factor_batches`, :func:`fixed_factor_pairs`): a batch for factor k at
value c is a uniform draw, without replacement within the batch, from the pool points whose
factor k is c. When the pool is itself a uniform draw from the factor grid (as
:func:`~latentbench.metrics.factors.encode_factor_draws` makes it), the points of a group are
i.i.d. uniform on the sub-grid {v_k = c}, so every batch has exactly the distribution of the
paper's; what differs is that votes reuse pool points, which makes them slightly dependent
(every point of a 15,000-point pool is in ~64 FactorVAE batches), so the accuracy varies a
little more from pool to pool than it would from fresh images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentbench.metrics.factor_info import check_codes, check_factors
from latentbench.models.registry import check_int

#: Codes whose standard deviation over the pool is below this are collapsed and left out of the
#: FactorVAE vote: disentanglement_lib's ``prune_dims.threshold`` in Locatello et al.'s study.
PRUNE_STD = 0.05

# Votes whose batches are gathered at once: [votes, batch, d] float64 codes, ~10 MB at
# batch 64 and d = 10; bounds memory whatever n_train.
_VOTE_CHUNK = 2048


@dataclass(frozen=True)
class _Groups:
    """The pool sorted by each factor: ``rows[k]`` lists the pool rows by factor k's value, and
    for each pool row p, ``start[p, k]``, ``size[p, k]`` and ``rank[p, k]`` locate its group
    {q : v_k(q) = v_k(p)} in that list and p's place in it."""

    rows: np.ndarray  # [K, N]
    start: np.ndarray  # [N, K]
    size: np.ndarray  # [N, K]
    rank: np.ndarray  # [N, K]


def _groups(factors: np.ndarray, need: int, what: str) -> _Groups:
    n, n_factors = factors.shape
    rows = np.empty((n_factors, n), dtype=np.int64)
    start = np.empty((n, n_factors), dtype=np.int64)
    size = np.empty((n, n_factors), dtype=np.int64)
    rank = np.empty((n, n_factors), dtype=np.int64)
    for k in range(n_factors):
        order = np.argsort(factors[:, k], kind="stable")
        values, first, counts = np.unique(factors[order, k], return_index=True,
                                          return_counts=True)
        if counts.min() < need:
            small = int(counts.argmin())
            raise ValueError(f"factors column {k} has {counts[small]} pool points with value "
                             f"{values[small]}, fewer than the {need} {what}; encode a larger "
                             f"pool or use a smaller batch_size")
        group = np.searchsorted(values, factors[:, k])
        rows[k] = order
        start[:, k], size[:, k] = first[group], counts[group]
        rank[order, k] = np.arange(n) - np.repeat(first, counts)
    return _Groups(rows, start, size, rank)


def _subsets(sizes: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """For each row r, ``count`` distinct positions uniform in 0..sizes[r] − 1: Floyd's
    algorithm, one step for all rows at once. ``[len(sizes), count]``.

    Step i draws t uniform in 0..j with j = size − count + i and keeps t, or j if t was drawn
    already; every ``count``-subset comes out with equal probability (Floyd's induction), in
    ``count`` vectorised steps of O(rows × i) comparisons instead of a loop per row.
    """
    chosen = np.empty((len(sizes), count), dtype=np.int64)
    for i in range(count):
        top = sizes - count + i
        draw = rng.integers(0, top + 1)
        seen = (chosen[:, :i] == draw[:, None]).any(axis=1)
        chosen[:, i] = np.where(seen, top, draw)
    return chosen


def fixed_factor_batches(factors: np.ndarray, n_votes: int, batch_size: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The batches of ``n_votes`` FactorVAE votes, drawn from a pool with ``factors``.

    For each vote, in order: a factor k uniform in 0..K − 1, a value c of it — the factor k of
    a pool point drawn uniformly, i.e. c from the pool's own distribution, as disentanglement_lib
    takes it from a fresh grid draw — and ``batch_size`` distinct pool rows uniform among those
    whose factor k is c. :func:`factorvae_score` uses exactly these (train votes, then eval
    votes, from one ``numpy.random.default_rng(seed)``); they are public so that a reference can
    be run on the same batches.

    Args:
        factors: int ``[N, K]`` grid indices ≥ 0 of the pool.
        n_votes: votes, ≥ 1.
        batch_size: pool rows per batch, ≥ 1.
        rng: the generator to draw from.

    Returns:
        ``(factor, rows)``: int64 ``[n_votes]`` fixed factors and int64
        ``[n_votes, batch_size]`` pool rows.

    Raises:
        ValueError: a value of some factor on fewer than ``batch_size`` pool points.
    """
    y = check_factors(factors, len(np.asarray(factors)))
    n_votes = check_int(n_votes, "n_votes", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    groups = _groups(y, batch_size, f"points a batch of batch_size={batch_size} needs")
    factor = rng.integers(0, y.shape[1], n_votes)
    anchor = rng.integers(0, len(y), n_votes)
    start, size = groups.start[anchor, factor], groups.size[anchor, factor]
    positions = start[:, None] + _subsets(size, batch_size, rng)
    return factor, groups.rows[factor[:, None], positions]


def fixed_factor_pairs(factors: np.ndarray, n_votes: int, batch_size: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs of ``n_votes`` β-VAE votes, drawn from a pool with ``factors``.

    For each vote a factor k uniform in 0..K − 1; then for each of its ``batch_size`` pairs a
    first pool row uniform over the pool and a second uniform among the *other* pool rows with
    the same value of factor k. So the pair shares factor k (its value drawn per pair, from the
    pool's distribution) and nothing else on purpose, as disentanglement_lib's two grid draws
    with factor k copied from the first. :func:`betavae_score` uses exactly these (train votes,
    then eval votes, from one ``numpy.random.default_rng(seed)``).

    Args:
        factors: int ``[N, K]`` grid indices ≥ 0 of the pool.
        n_votes: votes, ≥ 1.
        batch_size: pairs per vote, ≥ 1.
        rng: the generator to draw from.

    Returns:
        ``(factor, first, second)``: int64 ``[n_votes]`` and two int64
        ``[n_votes, batch_size]`` arrays of pool rows, ``first != second`` everywhere.

    Raises:
        ValueError: a value of some factor on a single pool point (no second point to pair
            with).
    """
    y = check_factors(factors, len(np.asarray(factors)))
    n_votes = check_int(n_votes, "n_votes", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    groups = _groups(y, 2, "points a pair needs")
    factor = rng.integers(0, y.shape[1], n_votes)
    first = rng.integers(0, len(y), (n_votes, batch_size))
    k = np.broadcast_to(factor[:, None], first.shape)
    size, own = groups.size[first, k], groups.rank[first, k]
    # Uniform over the group without the first row: a position in 0..size − 2, moved up by one
    # from the first row's own position on.
    other = rng.integers(0, size - 1)
    other += other >= own
    return factor, first, groups.rows[k, groups.start[first, k] + other]


def _checked_pool(codes: object, factors: object, batch_size: int, n_train: int, n_eval: int,
                  min_batch: int) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    x = check_codes(codes)
    y = check_factors(factors, len(x))
    if y.shape[1] < 2:
        raise ValueError(f"factors needs at least 2 factors to tell apart, got {y.shape[1]}")
    return (x, y, check_int(batch_size, "batch_size", minimum=min_batch),
            check_int(n_train, "n_train", minimum=1), check_int(n_eval, "n_eval", minimum=1))


@dataclass(frozen=True)
class FactorVAEResult:
    """The FactorVAE score and its votes.

    Attributes:
        score: accuracy of the majority-vote classifier on the eval votes, in [0, 1]; 0 when no
            code is active. Chance is about 1/K.
        train_accuracy: its accuracy on the votes it was built from.
        train_votes: int64 ``[K, d]``, how often fixing factor k made code j the least varying
            (disentanglement_lib's ``votes``, indexed by the original code).
        eval_votes: int64 ``[K, d]``, the same for the eval votes.
        classifier: int64 ``[d]``, the factor each code votes for (the argmax of its column of
            ``train_votes``, ties to the lower factor).
        active: bool ``[d]``, codes with standard deviation ≥ :data:`PRUNE_STD`.
        variances: float64 ``[d]``, the codes' variances over the pool (normaliser N − 1).
        n_train: training votes.
        n_eval: eval votes.
        batch_size: pool points per vote.
        n_pool: pool points N.
    """

    score: float
    train_accuracy: float
    train_votes: np.ndarray
    eval_votes: np.ndarray
    classifier: np.ndarray
    active: np.ndarray
    variances: np.ndarray
    n_train: int
    n_eval: int
    batch_size: int
    n_pool: int

    @property
    def n_active(self) -> int:
        """Codes that vote."""
        return int(self.active.sum())


def _votes(codes: np.ndarray, n_factors: int, factor: np.ndarray, rows: np.ndarray,
           variances: np.ndarray, active: np.ndarray) -> np.ndarray:
    """``[K, d]`` counts of (fixed factor, code with the least normalised variance)."""
    live = np.flatnonzero(active)
    live_codes, live_variances = codes[:, live], variances[live]
    chosen = np.empty(len(factor), dtype=np.int64)
    for start in range(0, len(factor), _VOTE_CHUNK):
        batch = live_codes[rows[start:start + _VOTE_CHUNK]]  # [votes, batch, active]
        local = batch.var(axis=1, ddof=1)
        chosen[start:start + _VOTE_CHUNK] = live[np.argmin(local / live_variances, axis=1)]
    votes = np.zeros((n_factors, codes.shape[1]), dtype=np.int64)
    np.add.at(votes, (factor, chosen), 1)
    return votes


def factorvae_score(codes: np.ndarray, factors: np.ndarray, *, batch_size: int = 64,
                    n_train: int = 10_000, n_eval: int = 5_000, seed: int = 0
                    ) -> FactorVAEResult:
    r"""FactorVAE disentanglement score of ``codes`` for ``factors``, from a pool of encoded
    points (see the module docstring for why a pool, and what it changes).

    With :math:`s_j^2` code j's variance over the pool, the codes with :math:`s_j \ge 0.05`
    active (:data:`PRUNE_STD`), a vote is

    .. math::
        \Big(\arg\min_{j \text{ active}} \frac{\widehat{\mathrm{Var}}_{B}(z_j)}{s_j^2},\; k\Big)

    for a batch B of ``batch_size`` points that share a value of a uniformly chosen factor k
    (:func:`fixed_factor_batches`; variances with normaliser n − 1, as disentanglement_lib).
    ``n_train`` votes build a majority-vote classifier — each code predicts the factor that
    most often made it the least varying — and the score is its accuracy on ``n_eval`` further
    votes: :math:`\sum_j V^{\text{eval}}_{c(j), j} / \sum V^{\text{eval}}`. With no active code
    the score is 0, as disentanglement_lib. A representation with one code per factor scores
    1; noise scores about 1/K (each vote's factor is drawn independently of its code).

    Args:
        codes: float ``[N, d]``, the pool's representation.
        factors: int ``[N, K]`` grid indices ≥ 0, K ≥ 2; every value of every factor on at least
            ``batch_size`` pool points.
        batch_size: points per vote, ≥ 2 (a variance); disentanglement_lib uses 64.
        n_train: votes the classifier is built from, ≥ 1.
        n_eval: votes it is scored on, ≥ 1.
        seed: seed of the draws (``numpy.random.default_rng``).

    Returns:
        :class:`FactorVAEResult`.

    Raises:
        ValueError: inputs that fail the checks of
            :func:`~latentbench.metrics.factor_info.check_codes` and ``check_factors``, K
            below 2, a factor value on fewer than ``batch_size`` pool points, counts below
            their minimum.
    """
    x, y, batch_size, n_train, n_eval = _checked_pool(codes, factors, batch_size, n_train,
                                                      n_eval, 2)
    rng = np.random.default_rng(seed)
    train = fixed_factor_batches(y, n_train, batch_size, rng)
    held_out = fixed_factor_batches(y, n_eval, batch_size, rng)
    variances = x.var(axis=0, ddof=1)
    active = np.sqrt(variances) >= PRUNE_STD
    n_factors, d = y.shape[1], x.shape[1]
    if not active.any():
        empty = np.zeros((n_factors, d), dtype=np.int64)
        return FactorVAEResult(0.0, 0.0, empty, empty, np.zeros(d, dtype=np.int64), active,
                               variances, n_train, n_eval, batch_size, len(x))
    train_votes = _votes(x, n_factors, *train, variances, active)
    eval_votes = _votes(x, n_factors, *held_out, variances, active)
    classifier = np.argmax(train_votes, axis=0)
    codes_index = np.arange(d)
    train_accuracy = train_votes[classifier, codes_index].sum() / n_train
    score = eval_votes[classifier, codes_index].sum() / n_eval
    for array in (train_votes, eval_votes, classifier, active, variances):
        array.flags.writeable = False
    return FactorVAEResult(float(score), float(train_accuracy), train_votes, eval_votes,
                           classifier, active, variances, n_train, n_eval, batch_size, len(x))


@dataclass(frozen=True)
class BetaVAEResult:
    """The β-VAE score.

    Attributes:
        score: the logistic regression's accuracy on the eval votes, in [0, 1]; chance is about
            1/K.
        train_accuracy: its accuracy on the training votes.
        n_train: training votes.
        n_eval: eval votes.
        batch_size: pairs per vote.
        n_pool: pool points N.
    """

    score: float
    train_accuracy: float
    n_train: int
    n_eval: int
    batch_size: int
    n_pool: int


def _pair_features(codes: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Mean over each vote's pairs of |z(first) − z(second)|, ``[votes, d]``."""
    out = np.empty((len(first), codes.shape[1]))
    for start in range(0, len(first), _VOTE_CHUNK):
        stop = start + _VOTE_CHUNK
        out[start:stop] = np.abs(codes[first[start:stop]] - codes[second[start:stop]]).mean(1)
    return out


def betavae_score(codes: np.ndarray, factors: np.ndarray, *, batch_size: int = 64,
                  n_train: int = 10_000, n_eval: int = 5_000, seed: int = 0) -> BetaVAEResult:
    r"""β-VAE disentanglement score of ``codes`` for ``factors``, from a pool of encoded points
    (see the module docstring for why a pool, and what it changes).

    A vote for a uniformly chosen factor k is the feature vector

    .. math::
        \frac1L \sum_{l=1}^L \big| z(x_l) - z(x'_l) \big| \in \mathbb R^d

    over L = ``batch_size`` pairs that each share their value of factor k
    (:func:`fixed_factor_pairs`), labelled k. A scikit-learn ``LogisticRegression`` with its
    defaults and ``random_state=seed``, as disentanglement_lib calls it (today: multinomial, L2
    with C = 1, lbfgs; the scikit-learn of 2019 defaulted to one-vs-rest liblinear), is fitted on
    ``n_train`` votes, and the score is its accuracy on ``n_eval`` further votes. A code that
    carries factor k alone is 0 in every vote for k, so a representation with one code per
    factor scores ≈ 1; noise scores about 1/K.

    Args:
        codes: float ``[N, d]``, the pool's representation.
        factors: int ``[N, K]`` grid indices ≥ 0, K ≥ 2; every value of every factor on at
            least 2 pool points.
        batch_size: pairs per vote, ≥ 1; disentanglement_lib uses 64.
        n_train: training votes, ≥ 1; they must hold two factors at least.
        n_eval: eval votes, ≥ 1.
        seed: seed of the draws and of the regression.

    Returns:
        :class:`BetaVAEResult`.

    Raises:
        ValueError: inputs that fail the checks of
            :func:`~latentbench.metrics.factor_info.check_codes` and ``check_factors``, K
            below 2, a factor value on a single pool point, counts below their minimum, training
            votes that all fix the same factor.
    """
    from sklearn.linear_model import LogisticRegression  # where used: ~1.3 s to import

    x, y, batch_size, n_train, n_eval = _checked_pool(codes, factors, batch_size, n_train,
                                                      n_eval, 1)
    rng = np.random.default_rng(seed)
    train_factor, *train_pairs = fixed_factor_pairs(y, n_train, batch_size, rng)
    eval_factor, *eval_pairs = fixed_factor_pairs(y, n_eval, batch_size, rng)
    if len(np.unique(train_factor)) < 2:
        raise ValueError(f"n_train={n_train} votes all fix factor {train_factor[0]}: nothing "
                         f"to tell apart; use more votes")
    train_features = _pair_features(x, *train_pairs)
    # max_iter 1,000 instead of 100: the same objective, but lbfgs gets to its optimum on
    # unscaled codes, whose separable votes (a perfect code) can take more than 100 steps.
    model = LogisticRegression(random_state=seed, max_iter=1000).fit(train_features, train_factor)
    return BetaVAEResult(float(model.score(_pair_features(x, *eval_pairs), eval_factor)),
                         float(model.score(train_features, train_factor)), n_train, n_eval,
                         batch_size, len(x))
