"""One Optuna worker process on a shared RDB storage: ``python -m bench._dist_optuna_worker
URL STUDY N_TRIALS SECONDS``."""

from __future__ import annotations

import sys

from bench._common import pin_threads


def main(argv: list[str]) -> int:
    url, name, n_trials, seconds = argv[0], argv[1], int(argv[2]), float(argv[3])
    pin_threads(1)
    import optuna

    from bench._dist_objective import SleepObjective

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url)
    study = optuna.load_study(
        study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler()
    )
    study.optimize(SleepObjective(seconds), n_trials=n_trials)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
