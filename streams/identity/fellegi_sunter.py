"""Fellegi-Sunter weights with m and u estimated from the records themselves (EM).

A candidate pair's comparison pattern (one level per field, ``streams.identity.
comparisons``) is weighed as the sum over its compared fields of ``log2(m / u)``: ``m``
the probability of that level between two records of one person, ``u`` between two
people's records that blocking put side by side. Missing fields weigh nothing.

Nothing here is set per data set. ``estimate`` fits a two-class mixture to the patterns
of the candidate pairs counted so far by expectation-maximisation, under the model's
usual assumption that fields disagree independently given the class:

- ``m`` (the matches' side) starts from a prior that favours agreement and ``u`` from one
  that favours disagreement, and both move to what the data says. Where most candidates
  are matches (tight blocks, many duplicates, as in the public FEBRL sets) the classes
  are then not fitted the wrong way round, as they are when ``u`` starts from the
  candidates' overall frequencies;
- pairs that a shared identifier joined (``linked``: an e-mail, a phone, a WeChat id)
  are one person's for sure. Once there are MIN_LINKED of them, ``m`` is taken from
  them as measured and only ``u`` (from the candidates' frequencies) and the match
  share are fitted: at a fair, the
  strongest structure among candidates is colleagues and namesakes (one firm, one city),
  which unanchored EM takes for the matches.

The join threshold is chosen for precision from the fitted model: the lowest weight at
which the pairs weighing at least that much are, by the model's own posterior
probabilities, at most ``1 - TARGET_PRECISION`` false; and never below the weight at
which the pair itself is MARGINAL_ODDS times likelier one person than not, nor below 0.
When no weight qualifies the threshold is infinite and the path joins nothing. The
model, its pair count and its threshold are kept with the resolver state (and so
replayed exactly from the identity log), and every merge on this path records its
weight and the threshold it passed.

Measured (2026-11-29) on the two public FEBRL sets in ``../shared/er`` (6,000 records,
no identifiers): pairwise precision 1.000, recall 0.978, F1 0.989; the cumulative rule
alone (no marginal floor) let weak pairs ride in with strong ones on a test set with
namesakes on one street (precision 0.989); the pair's own posterior >= 0.995 alone
cost FEBRL recall (F1 0.980). On the simulator's 50,000 records (seeds 7, 11) the
namesakes at one firm keep the posteriors below the target once the fair is large:
the path then closes and the rules decide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from streams.identity.comparisons import CHEAP, FIELDS, LEVELS, MISSING

TARGET_PRECISION = 0.995  # of the set of pairs joined on this path, by the model
MARGINAL_ODDS = 9.0  # the pair at the threshold: posterior >= 0.9
ITERATIONS = 60
MIN_LINKED = 200  # identifier-linked pairs from which m is taken as measured
_SMOOTHING = 0.5  # pseudo-counts per level: no level is ever impossible
_FLOOR = 1e-6


@dataclass(frozen=True)
class Model:
    """Fitted m and u per field and level, the match share and the chosen threshold."""

    m: tuple[tuple[float, ...], ...]
    u: tuple[tuple[float, ...], ...]
    match_share: float
    threshold: float
    pairs: int

    def posterior(self, weight: float) -> float:
        """The model's probability that a pair of this weight is one person's."""
        odds = weight + math.log2(self.match_share / (1 - self.match_share))
        return round(1 / (1 + 2 ** -max(-60.0, min(60.0, odds))), 6)

    def weights(self) -> tuple[tuple[float, ...], ...]:
        """log2(m/u) per field and level."""
        return tuple(tuple(math.log2(mi / ui) for mi, ui in zip(mf, uf, strict=True))
                     for mf, uf in zip(self.m, self.u, strict=True))

    def describe(self) -> dict[str, object]:
        """The estimates as recorded (JSON-ready): per field, m and u by level."""
        return {
            "pairs": self.pairs, "match_share": round(self.match_share, 5),
            "threshold": round(self.threshold, 3),
            "fields": {name: {"m": [round(x, 4) for x in m], "u": [round(x, 5) for x in u]}
                       for name, m, u in zip(FIELDS, self.m, self.u, strict=True)},
        }


def estimate(patterns: Mapping[tuple[int, ...], int],
             linked: Mapping[tuple[int, ...], int] | None = None,
             target_precision: float = TARGET_PRECISION) -> Model:
    """Fit m, u and the match share to the candidate pairs' pattern counts; choose the
    threshold. ``linked`` are patterns of pairs a shared identifier joined: matches for
    sure, they anchor the matches' side (without them, EM may take any strong structure
    of the candidates, such as one city's, for the match class)."""
    linked = linked or {}
    keys = list(dict.fromkeys([*patterns, *linked]))
    counts = np.array([patterns.get(k, 0) for k in keys], dtype=np.float64)
    sure = np.array([linked.get(k, 0) for k in keys], dtype=np.float64)
    grid = np.array(keys, dtype=np.int64).reshape(len(keys), len(FIELDS))
    onehot = [np.stack([grid[:, f] == level for level in range(LEVELS[f])], axis=1)
              .astype(np.float64) for f in range(len(FIELDS))]
    # Start from the two classes' defining tendency, agreement against disagreement (not
    # from the candidates' overall frequencies: where most candidates are matches, as in
    # tight blocks, EM would then fit the classes the wrong way round).
    anchored = sure.sum() >= MIN_LINKED
    if anchored:  # m as measured; u from the candidates, mostly not matches
        m = [_normalise(sure @ onehot[f] + _SMOOTHING) for f in range(len(FIELDS))]
        u = [_normalise(counts @ onehot[f] + _SMOOTHING) for f in range(len(FIELDS))]
    else:
        m = [_normalise(0.5 ** np.arange(LEVELS[f])) for f in range(len(FIELDS))]
        u = [_normalise(2.0 ** np.arange(LEVELS[f])) for f in range(len(FIELDS))]
    share = 0.5
    posterior = np.zeros(len(keys))
    for _ in range(ITERATIONS):
        log_m = sum(onehot[f] @ np.log(m[f]) for f in range(len(FIELDS)))
        log_u = sum(onehot[f] @ np.log(u[f]) for f in range(len(FIELDS)))
        odds = np.clip(log_m - log_u + math.log(share / (1 - share)), -500, 500)
        posterior = 1 / (1 + np.exp(-odds))
        matched, other = counts * posterior, counts * (1 - posterior)
        if not anchored:
            m = [_normalise(matched @ onehot[f] + _SMOOTHING) for f in range(len(FIELDS))]
        u = [_normalise(other @ onehot[f] + _SMOOTHING) for f in range(len(FIELDS))]
        share = float(np.clip(matched.sum() / max(counts.sum(), 1.0), 1e-4, 1 - 1e-4))
    weight = sum(onehot[f] @ np.log2(m[f] / u[f]) for f in range(len(FIELDS)))
    keep = counts > 0
    # And the pair at the threshold must itself be likelier one person than not, by its
    # own posterior odds (and its own evidence, weight >= 0): a set of strong matches
    # above it must not carry weak pairs in with it.
    marginal = math.log2(MARGINAL_ODDS) - math.log2(share / (1 - share))
    threshold = max(0.0, marginal, _threshold(weight[keep], posterior[keep], counts[keep],
                                              target_precision))
    return Model(tuple(tuple(float(x) for x in f) for f in m),
                 tuple(tuple(float(x) for x in f) for f in u),
                 share, threshold, int(counts.sum() + sure.sum()))


def _threshold(weight: np.ndarray, posterior: np.ndarray, counts: np.ndarray,
               target_precision: float) -> float:
    """The lowest weight above which the model expects at most 1 - target false pairs."""
    if not len(weight):
        return math.inf  # nothing counted yet but identifier-linked pairs
    order = np.argsort(-weight, kind="stable")
    false = np.cumsum(counts[order] * (1 - posterior[order]))
    total = np.cumsum(counts[order])
    ok = false / total <= 1 - target_precision
    if not ok[0]:
        return math.inf
    last = int(np.argmin(ok)) - 1 if not ok.all() else len(ok) - 1
    return float(weight[order][last])


def _normalise(values: np.ndarray) -> np.ndarray:
    values = np.maximum(values, _FLOOR)
    return values / values.sum()


def weigh(weights: tuple[tuple[float, ...], ...], pattern: tuple[int, ...]) -> float:
    """The pattern's match weight: the sum of its compared fields' log2(m/u)."""
    return sum(w[level] for w, level in zip(weights, pattern, strict=True) if level != MISSING)


class Weigher:
    """``weigh`` with a memory: candidate pairs fall into a few thousand patterns."""

    def __init__(self, model: Model) -> None:
        self.weights = model.weights()
        self._known: dict[tuple[int, ...], float] = {}
        self._cheap: dict[tuple[int, ...], float] = {}
        # the most the costly fields can add: a pair whose cheap fields weigh less than
        # the threshold minus this cannot reach it
        self.costly_bound = sum(max(0.0, *w) for w in self.weights[CHEAP:])

    def cheap(self, levels: tuple[int, ...]) -> float:
        """The weight of the cheap fields alone (``FIELDS[:CHEAP]``)."""
        weight = self._cheap.get(levels)
        if weight is None:
            weight = self._cheap[levels] = weigh(self.weights[:CHEAP], levels)
        return weight

    def __call__(self, pattern: tuple[int, ...]) -> float:
        weight = self._known.get(pattern)
        if weight is None:
            weight = self._known[pattern] = weigh(self.weights, pattern)
        return weight
