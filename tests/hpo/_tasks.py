"""PBT members for the process tests; no torch import, so worker processes start quickly."""

from __future__ import annotations

import os

CRASH_ENV = "SLIMTUNE_TEST_PBT_CRASH_MARKER"


def train_quadratic(step) -> float:
    """A PBT member without torch: noisy momentum SGD on a quadratic, state in JSON.

    Member 1 kills its process the first time it starts at step >= 4 when the environment
    variable CRASH_ENV names a marker file that does not exist yet.
    """
    import json
    import random
    from pathlib import Path

    marker = os.environ.get(CRASH_ENV)
    if marker and step.member == 1 and step.start_step >= 4 and not Path(marker).exists():
        Path(marker).write_text("crashed")
        os._exit(1)
    path = Path(step.checkpoint_dir) / "state.json"
    rng = random.Random(step.seed)
    if path.exists():
        state = json.loads(path.read_text())
    else:
        state = {"x": [rng.uniform(-3, 3) for _ in range(4)], "v": [0.0] * 4}
    x, v = state["x"], state["v"]
    scales = [0.1, 0.3, 1.0, 3.0]
    lr, mom = step.hparams["lr"], step.hparams["momentum"]
    for _ in range(step.steps):
        for i in range(4):
            g = scales[i] * (x[i] - 1.0) + 0.05 * rng.gauss(0, 1)
            v[i] = mom * v[i] + g
            x[i] -= lr * v[i]
    path.write_text(json.dumps({"x": x, "v": v}))
    return sum(s * (xi - 1.0) ** 2 for s, xi in zip(scales, x, strict=True))
