"""L2-regularised linear models fitted on the cluster: ridge, logistic and multinomial logistic.

The model sees a *design* built block by block from the raw feature matrix: each numeric column
is standardised with the training mean and standard deviation (a missing value becomes 0, that
is the mean), and each categorical column, which holds integer codes ``0..L-1`` as floats, is
one-hot encoded in place with ``L`` columns (a missing or unknown code gives all zeros).

Fitting makes few passes over the data, each one ``dask.compute`` of per-block summaries summed
on the cluster in float64:

- a first pass for the column means and standard deviations and the checks on ``y``;
- ridge regression: one pass for ``D'D`` and ``D'y`` (``D`` the design with a column of ones),
  then a solve on the client;
- logistic regression (binary or multinomial): Newton's method (IRLS), one pass per iteration
  for the loss, the gradient and the Hessian, the Newton system solved on the client with
  NumPy, with step halving whenever a step does not lower the objective.

The objectives are those of scikit-learn, so the solutions agree with its estimators fitted on
the same design: ``Ridge(alpha=l2)`` for regression and ``LogisticRegression(C=1 / l2)`` for
classification (intercepts are never penalised; the multinomial model has one weight vector per
class, all penalised, and its intercepts sum to zero).

Blocks may be NumPy or CuPy arrays; block functions use the block's own array module and send
NumPy summaries back. CuPy is only imported when a block is not a NumPy array.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.training.backends.linear.blocks import (
    _add_parts,
    _block_gram,
    _block_newton,
    _block_stats,
    _blocks,
    _check_arrays,
    _check_number,
    _compute,
    _merge_stats,
    _persist,
    _Spec,
    _tree,
)
from workbench.training.backends.linear.model import (
    TASKS,
    LinearModel,
    _check_categorical,
    _layout,
)

if TYPE_CHECKING:
    import dask.array as da
    import distributed

logger = logging.getLogger(__name__)

# A standard deviation this small relative to the mean is a constant column (scale 1.0).
_CONSTANT_STD = 1e-12
# Armijo constant of the step-halving line search, and the most halvings of one step.
_ARMIJO = 1e-4
_MAX_HALVINGS = 30


# --- fitting ---------------------------------------------------------------------------------
def fit(
    X: da.Array,
    y: da.Array,
    *,
    task: str,
    n_classes: int | None = None,
    categorical: dict[int, int] | None = None,
    l2: float = 1.0,
    max_iter: int = 50,
    tol: float = 1e-8,
    client: distributed.Client | None = None,
    on_iteration: Callable[[int, dict[str, float]], None] | None = None,
) -> LinearModel:
    """Fit an L2-regularised linear model on Dask arrays.

    Parameters
    ----------
    X
        A Dask array ``(n, p)``, NumPy or CuPy blocks, chunked along rows (several column
        chunks are joined). Numeric columns may hold NaN (imputed with the mean); categorical
        columns hold codes ``0..L-1`` as floats.
    y
        A Dask array ``(n,)``: class indices ``0..K-1`` for classification, values for
        regression. It is rechunked to ``X``'s row chunks if they differ.
    task
        ``"binary"`` (logistic), ``"multiclass"`` (multinomial logistic) or ``"regression"``
        (ridge).
    n_classes
        For multiclass, K; ``None`` takes ``max(y) + 1``. Binary takes 2 (or ``None``);
        regression takes ``None``.
    categorical
        ``{column index: number of levels}``; each such column is one-hot encoded in place.
    l2
        The penalty. Regression minimises ``sum((y - b - Dw)**2) + l2 * ||w||**2``
        (``sklearn.linear_model.Ridge(alpha=l2)``), ``l2 >= 0``; classification minimises the
        summed log loss plus ``l2 / 2`` times the squared norm of all weights
        (``sklearn.linear_model.LogisticRegression(C=1 / l2)``), ``l2 > 0``. Intercepts are
        not penalised.
    max_iter
        The most passes over the data the Newton solver makes.
    tol
        Stop when half the Newton decrement, or the decrease of the objective after a full
        Newton step, is below ``tol`` times the objective.
    client
        The client to run on; ``None`` uses Dask's current scheduler.
    on_iteration
        Called as ``on_iteration(i, {"loss": objective per row, "step": step length})`` after
        each pass of the solver (once for regression).

    Returns
    -------
    LinearModel

    Raises
    ------
    TypeError
        ``X`` or ``y`` is not a numeric Dask array, or an option has the wrong type.
    ValueError
        Shapes that do not fit, no rows, infinite values in numeric columns of ``X``, NaN or
        infinite values in ``y``, class labels outside ``0..K-1``, a class without rows, fewer
        than 2 classes, an unknown ``task`` or an out-of-range ``l2``, ``max_iter`` or ``tol``.

    Notes
    -----
    ``X`` and ``y`` are persisted (on ``client``, else with Dask's current scheduler) for the
    fit, since every pass reads them, and released when it returns. Not converging within
    ``max_iter`` logs a warning on the ``workbench`` logger and returns the last iterate.
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not one of {', '.join(map(repr, TASKS))}")
    X, y = _check_arrays(X, y)
    n_features = int(X.shape[1])
    cats = _check_categorical(categorical, n_features)
    k = _check_n_classes(task, n_classes)
    l2 = _check_number("l2", l2)
    if task == "regression" and l2 < 0:
        raise ValueError(f"l2={l2} must be >= 0 for ridge regression")
    if task != "regression" and l2 <= 0:
        raise ValueError(
            f"l2={l2} must be > 0 for logistic regression (the unpenalised optimum may not "
            "exist); use a small value such as 1e-6 for a nearly unpenalised fit"
        )
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ValueError(f"max_iter={max_iter!r} must be a positive int")
    tol = _check_number("tol", tol)
    if tol < 0:
        raise ValueError(f"tol={tol} must be >= 0")
    if on_iteration is not None and not callable(on_iteration):
        raise TypeError(f"on_iteration must be callable, got {type(on_iteration).__name__}")

    X, y = _persist(X, y, client)
    layout = _layout(n_features, cats)
    blocks = _blocks(X, y)

    import dask

    stats_fn = dask.delayed(_block_stats, pure=True)
    stats = _compute(
        _tree(
            [stats_fn(xb, yb, layout.num_idx, task != "regression", k) for xb, yb in blocks],
            _merge_stats,
        ),
        client,
    )
    n = int(stats["n"])
    k = _check_stats(task, k, stats, X.shape)
    count = stats["count"]
    mean = np.where(count > 0, stats["mean"], 0.0)
    std = np.sqrt(stats["m2"] / np.maximum(count, 1))
    scale = np.where((std > 0) & (std > _CONSTANT_STD * np.abs(mean)), std, 1.0)

    spec = _Spec(task=task, layout=layout, mean=mean, scale=scale, n_classes=k or 1)
    spec_d = dask.delayed(spec, pure=True)
    m = layout.n_design + 1

    if task == "regression":
        gram_fn = dask.delayed(_block_gram, pure=True)
        gram, dty, yty = _compute(
            _tree([gram_fn(xb, yb, spec_d) for xb, yb in blocks], _add_parts), client
        )
        penalty = np.full(m, l2)
        penalty[0] = 0.0
        a = gram + np.diag(penalty)
        try:
            beta = np.linalg.solve(a, dty) if l2 > 0 else _lstsq(a, dty)
        except np.linalg.LinAlgError:
            beta = _lstsq(a, dty)
        sse = max(float(yty[0] - 2 * beta @ dty + beta @ gram @ beta), 0.0)
        if on_iteration is not None:
            on_iteration(1, {"loss": (sse + l2 * float(beta[1:] @ beta[1:])) / n, "step": 1.0})
        return LinearModel(
            task=task,
            n_features=n_features,
            categorical=cats,
            mean=mean,
            scale=scale,
            coef=beta[1:],
            intercept=float(beta[0]),
            l2=l2,
            iterations=1,
        )

    assert k is not None
    newton_fn = dask.delayed(_block_newton, pure=True)

    def evaluate(theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        theta_d = dask.delayed(theta, pure=True)
        loss, grad, hess = _compute(
            _tree([newton_fn(xb, yb, theta_d, spec_d) for xb, yb in blocks], _add_parts),
            client,
        )
        return float(loss[0]), grad, hess

    theta, iterations = _newton(
        evaluate,
        _initial_theta(task, k, m, stats),
        task=task,
        k=k,
        m=m,
        l2=l2,
        n=n,
        max_iter=int(max_iter),
        tol=tol,
        on_iteration=on_iteration,
    )
    if task == "binary":
        coef, intercept = theta[1:], float(theta[0])
        return LinearModel(task, n_features, cats, mean, scale, coef, intercept, l2, iterations)
    t = theta.reshape(k, m)
    return LinearModel(
        task, n_features, cats, mean, scale, t[:, 1:].copy(), t[:, 0].copy(), l2, iterations
    )


def _check_n_classes(task: str, n_classes: Any) -> int | None:
    if n_classes is None:
        return 2 if task == "binary" else None
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer):
        raise TypeError(f"n_classes must be an int or None, got {n_classes!r}")
    if task == "regression":
        raise ValueError(f"n_classes={n_classes} makes no sense for regression; leave it None")
    if n_classes < 2:
        raise ValueError(f"n_classes={n_classes}: a classifier needs at least 2 classes")
    if task == "binary" and n_classes != 2:
        raise ValueError(
            f"n_classes={n_classes} with task='binary'; use task='multiclass' for more than 2"
        )
    return int(n_classes)


def _check_stats(task: str, k: int | None, stats: dict[str, Any], shape: Any) -> int | None:
    """Raise on what the first pass found wrong; return the number of classes."""
    if stats["n"] == 0:
        raise ValueError(f"X has shape {shape} with no rows; there is nothing to fit")
    if stats["x_inf"]:
        raise ValueError(
            f"X holds {stats['x_inf']} infinite values in numeric columns; replace them "
            "(with NaN to impute the mean, or a finite value) before fitting"
        )
    if stats["y_nonfinite"]:
        raise ValueError(
            f"y holds {stats['y_nonfinite']} NaN or infinite values; drop those rows or fill "
            "the target before fitting"
        )
    if task == "regression":
        return None
    expected = f"0..{k - 1}" if k is not None else "integers 0..K-1"
    if stats["y_bad"]:
        raise ValueError(
            f"y for task={task!r} must hold class indices {expected}; {stats['y_bad']} values "
            f"do not (for example {stats['y_bad_example']!r}); encode the classes as integers "
            "0..K-1" + ("" if task == "binary" else " or pass n_classes=K")
        )
    classes, counts = stats["classes"], stats["class_counts"]
    present = classes[counts > 0]
    if present.size < 2:
        found = ", ".join(map(str, present.tolist())) or "none"
        raise ValueError(
            f"y holds fewer than 2 classes (found: {found}); a classifier needs rows of at "
            "least 2 classes"
        )
    if k is None:
        k = int(present.max()) + 1
    missing = sorted(set(range(k)) - set(present.tolist()))
    if missing:
        raise ValueError(
            f"classes {missing} of 0..{k - 1} have no rows in y, so their intercepts would "
            "diverge; renumber the classes present as 0..K-1 (and set n_classes)"
        )
    return k


def _initial_theta(task: str, k: int, m: int, stats: dict[str, Any]) -> np.ndarray:
    """Zero weights and the intercepts of the class frequencies (the intercept-only fit)."""
    freq = np.zeros(k)
    freq[stats["classes"]] = stats["class_counts"]
    log_freq = np.log(freq / freq.sum())
    if task == "binary":
        theta = np.zeros(m)
        theta[0] = log_freq[1] - log_freq[0]
        return theta
    t = np.zeros((k, m))
    t[:, 0] = log_freq - log_freq.mean()
    return t.reshape(-1)


def _lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.linalg.lstsq(a, b, rcond=None)[0])


def _newton_step(hess: np.ndarray, grad: np.ndarray, task: str, k: int, m: int) -> np.ndarray:
    """Solve ``hess @ step = -grad``.

    The multinomial Hessian is singular along one direction: adding the same value to every
    intercept changes nothing. A rank-one term on that direction makes it invertible without
    changing the step, whose intercepts are then centred.
    """
    if task == "multiclass":
        u = np.zeros((k, m))
        u[:, 0] = 1.0 / math.sqrt(k)
        hess = hess + max(float(np.mean(np.diag(hess))), 1.0) * np.outer(u, u)
    try:
        step = np.linalg.solve(hess, -grad)
        if not np.all(np.isfinite(step)):
            raise np.linalg.LinAlgError("non-finite step")
    except np.linalg.LinAlgError:
        step = _lstsq(hess, -grad)
    if task == "multiclass":
        s = step.reshape(k, m)
        s[:, 0] -= s[:, 0].mean()
    return step


def _newton(
    evaluate: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]],
    theta: np.ndarray,
    *,
    task: str,
    k: int,
    m: int,
    l2: float,
    n: int,
    max_iter: int,
    tol: float,
    on_iteration: Callable[[int, dict[str, float]], None] | None,
) -> tuple[np.ndarray, int]:
    """Damped Newton's method on the penalised objective; one ``evaluate`` per iteration."""
    penalised = np.ones((k if task == "multiclass" else 1, m))
    penalised[:, 0] = 0.0
    mask = penalised.reshape(-1)
    diag = np.arange(mask.size)

    def objective(t: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        loss, grad, hess = evaluate(t)
        w = t * mask
        hess[diag, diag] += l2 * mask
        return loss + 0.5 * l2 * float(w @ w), grad + l2 * w, hess

    def notify(i: int, f: float, step: float) -> None:
        if on_iteration is not None:
            on_iteration(i, {"loss": f / n, "step": step})

    f, g, h = objective(theta)
    iterations = 1
    notify(iterations, f, 0.0)
    change = math.inf  # relative decrease of the objective after the last full Newton step
    decrement = math.inf
    while True:
        step = _newton_step(h, g, task, k, m)
        slope = float(g @ step)
        decrement = -0.5 * slope / max(abs(f), np.finfo(float).tiny)
        if decrement < tol or change < tol:
            # Near the optimum the Newton step is safe, and makes the solution exact to
            # about the square of the remaining error; take it.
            return theta + step, iterations
        if iterations >= max_iter:
            break
        t = 1.0
        accepted = False
        for _ in range(_MAX_HALVINGS + 1):
            if iterations >= max_iter:
                break
            trial = theta + t * step
            f2, g2, h2 = objective(trial)
            iterations += 1
            if f2 <= f + _ARMIJO * t * slope or f2 - f <= 1e-13 * abs(f):
                accepted = True
                notify(iterations, f2, t)
                break
            notify(iterations, f, t)
            t *= 0.5
        if not accepted:
            break
        change = (f - f2) / max(abs(f2), np.finfo(float).tiny) if t == 1.0 else math.inf
        theta, f, g, h = trial, f2, g2, h2
    logger.warning(
        "the linear %s model did not converge in %d iterations: the last Newton decrement is "
        "%.3g of the objective and the last change %.3g (tol=%.3g); raise max_iter or l2, "
        "or loosen tol",
        task,
        iterations,
        decrement,
        change,
        tol,
    )
    return theta, iterations
