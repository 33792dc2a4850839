"""Bayesian optimisation of global microscope parameters (PhaseT3M, Fig. 1f).

Each trial sets the global parameters (C3, a defocus offset common to every image) to trial
values, runs a short phase-retrieval reconstruction, and scores it by the error on a
withheld fraction of the pixels (the runner's hold-out error), so that parameters which
merely make the data easier to over-fit are not rewarded. The trials are proposed by
Optuna's Gaussian-process sampler (``optuna.samplers.GPSampler``: a GP surrogate with an
expected-improvement acquisition, maintained by the Optuna project; Optuna is an optional
dependency, ``pip install optuna``). BoTorch would work as well; Optuna was chosen for its
small dependency set and its built-in trial bookkeeping.

Chromatic aberration and energy spread are not optimised: the reconstruction is coherent
(Ren et al.), so they do not enter the model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ...tiltseries import TiltSeries

__all__ = ["BayesOptions", "BayesResult", "optimise_microscope", "BAYES_PARAMETERS"]

#: global parameters the optimisation can search
BAYES_PARAMETERS = ("c3", "defocus_offset")


@dataclasses.dataclass
class BayesOptions:
    """Search space and budget.

    Parameters
    ----------
    parameters : tuple of str
        Names from :data:`BAYES_PARAMETERS`.
    c3_range : float
        C3 is searched in C3₀·(1 ± c3_range) (relative; C3₀ the series' value, > 0).
    defocus_range : float
        The common defocus offset is searched in ±defocus_range Å.
    n_trials : int
        Reconstructions run (the first ``n_startup`` at random points).
    n_startup : int
    iterations : int
        Iterations of each trial's reconstruction.
    method : str
        ``"singleslice"`` (cheap) or ``"multislice"``.
    holdout : float
        Fraction of pixels withheld to score a trial.
    seed : int
    """

    parameters: tuple[str, ...] = ("c3", "defocus_offset")
    c3_range: float = 0.3
    defocus_range: float = 200.0
    n_trials: int = 20
    n_startup: int = 8
    iterations: int = 5
    method: str = "singleslice"
    holdout: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [p for p in self.parameters if p not in BAYES_PARAMETERS]
        if bad or not self.parameters:
            raise ValueError(
                f"cannot optimise {bad or '(nothing)'}; choose from {', '.join(BAYES_PARAMETERS)}."
            )
        if not 0 < self.c3_range < 1:
            raise ValueError(f"c3_range must lie in (0, 1), got {self.c3_range}.")
        if not self.defocus_range > 0:
            raise ValueError(
                f"defocus_range must be a positive number of Å, got {self.defocus_range}."
            )
        if self.n_trials < 1 or self.n_startup < 1 or self.iterations < 1:
            raise ValueError("n_trials, n_startup and iterations must be ≥ 1.")
        if not 0 < self.holdout < 1:
            raise ValueError(f"holdout must lie in (0, 1), got {self.holdout}.")


@dataclasses.dataclass
class BayesResult:
    """Best values, the series carrying them, and every trial (values and score)."""

    best: dict[str, float]
    series: TiltSeries
    trials: list[dict[str, float]]


def _apply(series: TiltSeries, values: dict[str, float]) -> TiltSeries:
    changes: dict[str, Any] = {}
    if "c3" in values:
        changes["microscope"] = dataclasses.replace(series.microscope, cs=float(values["c3"]))
    if "defocus_offset" in values:
        changes["defocus"] = series.defocus + float(values["defocus_offset"])
    return series.replace(**changes)


def optimise_microscope(
    series: TiltSeries, options: BayesOptions | None = None, **reconstruct_kw: Any
) -> BayesResult:
    """Search C3 and a common defocus offset by Bayesian optimisation (see module notes).

    ``reconstruct_kw`` go to every trial's :func:`wedge.reconstruct` (``volume_shape``,
    ``n_bin``, ``device``, …). Returns the best values and ``series`` with them applied.
    """
    try:
        import optuna
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Bayesian optimisation needs optuna: pip install optuna (or use refine=['c3', "
            "'defocus'] for gradient refinement)."
        ) from None
    from ...api import reconstruct

    o = options or BayesOptions()
    if series.microscope is None or series.defocus is None:
        raise ValueError("the series needs a microscope and defocus values to optimise them.")
    c3 = float(series.microscope.cs)
    if "c3" in o.parameters and not c3 > 0:
        raise ValueError("C3 must be positive to search it relatively; set the microscope's cs.")

    def objective(trial: Any) -> float:
        values = {}
        if "c3" in o.parameters:
            values["c3"] = trial.suggest_float("c3", c3 * (1 - o.c3_range), c3 * (1 + o.c3_range))
        if "defocus_offset" in o.parameters:
            values["defocus_offset"] = trial.suggest_float(
                "defocus_offset", -o.defocus_range, o.defocus_range
            )
        rec = reconstruct(
            _apply(series, values), o.method, iterations=o.iterations, progress=False,
            holdout=o.holdout, patience=o.iterations + 1, seed=o.seed, **reconstruct_kw,
        )  # fmt: skip
        return float(rec.history[-1]["holdout_error"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.GPSampler(seed=o.seed, n_startup_trials=o.n_startup)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(objective, n_trials=o.n_trials)
    trials = [
        {**t.params, "holdout_error": float(t.value)}
        for t in study.trials
        if t.value is not None and np.isfinite(t.value)
    ]
    best = dict(study.best_params)
    return BayesResult(best=best, series=_apply(series, best), trials=trials)
