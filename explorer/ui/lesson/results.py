"""Lesson results shared between sessions: the same step on the same model (same weights) is
computed once, whoever presses first, and every other session is given that result.

A class of 30 pressing step 3 at once costs one round trip, not 30. The first caller of a key
computes it while later callers of the same key wait for that result (one computation per key
at a time); a failure is not stored, so the next press tries again. The store keeps at most
:data:`MAX_RESULTS` results (least recently used dropped first): each holds a few small images,
a table and a sentence, under about 2 MB (measured in ``tests/test_lesson_results.py``), so the
cache stays under ~64 MB whatever the visitors do. Keys name the model's weights
(:func:`model_version`), so a local checkpoint changed on disk is computed afresh.

Results are shared objects: callers must not change them (copy a figure before restyling it).
No gradio here; the handlers call :func:`shared` in the main process, never in a GPU worker.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable

from explorer.ui.lesson.steps import StepResult

MAX_RESULTS = 32  # 7 steps x 4 models, with room to spare

Key = tuple[int, str, str, str]  # (step, model, models folder, weights version)

COMPUTED: Counter[Key] = Counter()  # real computations per key (the tests count them)
_results: OrderedDict[Key, StepResult] = OrderedDict()
_lock = threading.Lock()
_busy: dict[Key, threading.Lock] = {}  # one lock per key being computed


def model_version(model: str, folder: str | None) -> str:
    """What identifies ``model``'s weights: the Hub snapshot's commit, a local file's
    fingerprint, a registered model's revision; ``"unknown"`` when it cannot be resolved."""
    from explorer.models import hub, registry

    try:
        return hub.model_revision(registry.resolve(model, folder))
    except Exception:  # an unknown or broken model: its step fails with its own sentence
        return "unknown"


def key(n: int, model: str, folder: str | None) -> Key:
    """The cache key of step ``n`` on ``model``: step 1 (the playground's digits) ignores it."""
    if n == 1:
        return (1, "", "", "playground")
    return (n, model, folder or "", model_version(model, folder))


def shared(k: Key, compute: Callable[[], StepResult]) -> StepResult:
    """The stored result for ``k``, or ``compute()``'s, stored (one computation per key)."""
    with _lock:
        if k in _results:
            _results.move_to_end(k)
            return _results[k]
        gate = _busy.setdefault(k, threading.Lock())
    with gate:
        with _lock:  # computed while this caller waited
            if k in _results:
                _results.move_to_end(k)
                return _results[k]
        result = compute()
        with _lock:
            COMPUTED[k] += 1
            _results[k] = result
            while len(_results) > MAX_RESULTS:
                _results.popitem(last=False)
            _busy.pop(k, None)
        return result


def stored(n: int) -> dict[Key, StepResult]:
    """Every stored result of step ``n`` (for "what other models answered"), oldest first."""
    with _lock:
        return {k: r for k, r in _results.items() if k[0] == n}


def clear() -> None:
    """Drop every stored result (the counts stay)."""
    with _lock:
        _results.clear()


def size() -> int:
    """How many results are stored."""
    with _lock:
        return len(_results)
