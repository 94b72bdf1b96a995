"""Member train functions for the PBT tests (module level, so they pickle into workers)."""

from __future__ import annotations

import torch

from slimtune.hpo import MemberStep, checkpoint_digest, load_training_state, save_training_state

LOG: list[dict] = []  # filled by train_linear in this process (inline runs only)


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=g)
    w = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    y = x @ w + 0.1 * torch.randn(96, 1, generator=g)
    return x[:64], y[:64], x[64:], y[64:]


def train_linear(step: MemberStep) -> float:
    """SGD on a tiny linear regression; returns validation MSE. Deterministic given the step."""
    torch.set_num_threads(1)
    start_digest = checkpoint_digest(step.checkpoint_dir)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    meta = load_training_state(step.checkpoint_dir, model, opt)
    if meta is None:
        g = torch.Generator().manual_seed(step.seed)
        with torch.no_grad():
            torch.nn.init.normal_(model.weight, generator=g)
            model.bias.zero_()
    for group in opt.param_groups:
        group["lr"] = step.hparams["lr"]
        group["momentum"] = step.hparams.get("momentum", 0.5)
    x, y, xv, yv = _data()
    g = torch.Generator().manual_seed(step.seed)
    for _ in range(step.steps):
        idx = torch.randint(0, 64, (16,), generator=g)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x[idx]), y[idx]).backward()
        opt.step()
    save_training_state(
        step.checkpoint_dir, model, opt, metadata={"steps": step.start_step + step.steps}
    )
    with torch.no_grad():
        score = float(torch.nn.functional.mse_loss(model(xv), yv))
    LOG.append(
        {
            "member": step.member,
            "start_step": step.start_step,
            "start_digest": start_digest,
            "end_digest": checkpoint_digest(step.checkpoint_dir),
            "weight": model.weight.detach().clone(),
        }
    )
    return score
