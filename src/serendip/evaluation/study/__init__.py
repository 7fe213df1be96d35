"""The study: every model on every dataset and protocol, tuned on validation, measured, compared.

- `config`: the validated `StudyConfig` (TOML) and the shipped profiles (`quick`, `full`);
- `runner`: the resumable loop over (dataset, protocol, model) cells (`run_study`);
- `cost`: fit time, peak memory, model size, recommendation latency;
- `results`: results.json / results.csv;
- `significance`, `leaderboard`, `peers`: paired tests, the HTML leaderboard, peer libraries.

Submodules are imported on use, so `import serendip.evaluation.study` stays cheap.

>>> from serendip.evaluation.study import load_profile, run_study
>>> results = run_study(load_profile("quick"), Path("study-out"))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "StudyConfig",
    "StudyRunner",
    "load_config",
    "load_profile",
    "parse_config",
    "run_study",
]

_EXPORTS = {
    "StudyConfig": "config",
    "load_config": "config",
    "load_profile": "config",
    "parse_config": "config",
    "StudyRunner": "runner",
    "run_study": "runner",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
