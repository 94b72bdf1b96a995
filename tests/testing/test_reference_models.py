from __future__ import annotations

import pytest
import torch

from slimtune.testing import (
    MLP,
    MobileNetV2Like,
    ResNetCNN,
    SmallCNN,
    TransformerClassifier,
    accuracy,
    fit,
    load_digits,
)

CASES = [
    (MLP, "flat", 8),
    (SmallCNN, "image", 16),
    (ResNetCNN, "image", 16),
    (MobileNetV2Like, "image", 16),
    (TransformerClassifier, "sequence", 8),
]


@pytest.mark.parametrize(("model_cls", "layout", "size"), CASES)
def test_reference_model_traces_and_gives_logits(model_cls: type, layout: str, size: int) -> None:
    data = load_digits(layout=layout, image_size=size)  # type: ignore[arg-type]
    model = model_cls().eval()
    x = data.x_val[:5]
    out = model(x)
    assert out.shape == (5, 10)
    traced = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(traced(x), out)


def test_load_digits_split_is_seeded_stratified_and_disjoint() -> None:
    a = load_digits(layout="flat")
    b = load_digits(layout="flat")
    torch.testing.assert_close(a.x_train, b.x_train)
    assert len(a.x_train) + len(a.x_val) == 1797
    assert a.x_train.shape[1] == 64 and float(a.x_train.max()) <= 1.0
    counts = torch.bincount(a.y_val, minlength=10)
    assert int(counts.min()) >= 34 and int(counts.max()) <= 38
    c = load_digits(layout="flat", seed=1)
    assert not torch.equal(a.x_val, c.x_val)


def test_load_digits_rejects_bad_layout_and_size() -> None:
    with pytest.raises(ValueError, match="`layout`"):
        load_digits(layout="grid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`image_size`"):
        load_digits(image_size=2)


def test_fit_is_deterministic_and_learns() -> None:
    data = load_digits(layout="flat")
    accs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = MLP(hidden=(64,))
        before = accuracy(model, data.x_val, data.y_val)
        accs.append(fit(model, data, epochs=3, lr=3e-3, seed=1))
    assert accs[0] == accs[1]
    assert accs[0] > 0.85 > before


def test_fit_cosine_schedule_decays_the_learning_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    lrs: list[float] = []

    class Recording(torch.optim.AdamW):
        def step(self, closure=None):  # type: ignore[no-untyped-def, override]
            lrs.append(self.param_groups[0]["lr"])
            return super().step(closure)

    data = load_digits(layout="flat")
    monkeypatch.setattr(torch.optim, "AdamW", Recording)
    torch.manual_seed(0)
    acc = fit(MLP(hidden=(32,)), data, epochs=4, lr=2e-2, batch_size=256, lr_schedule="cosine")
    per_epoch = sorted(set(lrs), reverse=True)
    assert per_epoch == pytest.approx([2e-2, 1e-2 * (1 + 2**-0.5), 1e-2, 1e-2 * (1 - 2**-0.5)])
    assert acc > 0.7
    lrs.clear()
    fit(MLP(hidden=(32,)), data, epochs=2, lr=4e-3, batch_size=512)
    assert set(lrs) == {4e-3}  # the default stays constant
    with pytest.raises(ValueError, match="`lr_schedule` must be 'constant' or 'cosine'"):
        fit(MLP(hidden=(32,)), data, epochs=1, lr_schedule="step")  # type: ignore[arg-type]
