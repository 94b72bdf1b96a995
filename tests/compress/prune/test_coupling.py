"""The dependency graph couples channels through the structures the issue lists."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from slimtune.compress.prune import PrunePlan, StructuredPruneConfig, apply_plan_, prune_

torch.set_num_threads(1)


def _check(model: nn.Module, x: torch.Tensor, ratio: float = 0.5) -> PrunePlan:
    model.eval()
    fresh = copy.deepcopy(model)
    y0 = model(x)
    plan = prune_(model, StructuredPruneConfig(ratio=ratio), example_inputs=x)
    y = model(x)
    assert y.shape == y0.shape
    apply_plan_(fresh, plan)
    assert torch.equal(fresh(x), y)
    return plan


class _CatSplit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(3, 16, 3, padding=1)
        self.mix = nn.Conv2d(24, 16, 1)
        self.gn = nn.GroupNorm(4, 16)
        self.left = nn.Conv2d(8, 4, 1)
        self.right = nn.Conv2d(8, 4, 1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mix(torch.cat([self.a(x), self.b(x)], dim=1))
        lo, hi = torch.chunk(self.gn(h), 2, dim=1)
        h = torch.cat([self.left(lo), self.right(hi)], dim=1)
        h = self.grouped(h)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 4), 1))


def test_cat_chunk_groupnorm_grouped_conv_flatten() -> None:
    model = _CatSplit()
    x = torch.randn(2, 3, 8, 8)
    _check(model, x)
    assert model.a.out_channels == 4 and model.b.out_channels == 8
    assert model.mix.in_channels == 12
    assert model.gn.num_channels == model.mix.out_channels == 8
    assert model.left.in_channels == 4 and model.right.in_channels == 4
    assert model.grouped.in_channels == 8  # a grouped conv keeps its inputs
    assert model.grouped.out_channels == 4 and model.grouped.out_channels % 2 == 0
    assert model.fc.in_features == 4 * 16


class _Embed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 16)
        self.ln = nn.LayerNorm(16)
        self.mha = nn.MultiheadAttention(16, 4, batch_first=True)
        self.fc = nn.Linear(16, 32)
        self.out = nn.Linear(32, 3)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        h = self.ln(self.emb(t))
        h = h + self.mha(h, h, h)[0]
        return self.out(torch.relu(self.fc(h))).mean(dim=1)


def test_embedding_layernorm_and_multihead_attention() -> None:
    model = _Embed()
    plan = _check(model, torch.randint(0, 20, (2, 5)))
    assert model.mha.embed_dim == 8 and model.mha.head_dim == 2 and model.mha.num_heads == 4
    assert model.emb.embedding_dim == 8 and model.ln.normalized_shape == (8,)
    assert model.fc.in_features == 8 and model.fc.out_features == 16
    assert {e.name for e in plan.entries} == {"emb", "ln", "mha", "fc", "out"}


def test_multihead_attention_with_bias_k_is_kept_whole() -> None:
    model = _Embed()
    model.mha = nn.MultiheadAttention(16, 4, batch_first=True, add_bias_kv=True)
    plan = _check(model, torch.randint(0, 20, (2, 5)))
    assert model.mha.embed_dim == 16 and model.emb.embedding_dim == 16
    assert {e.name for e in plan.entries} == {"fc", "out"}


class _Embed2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 16)
        self.ln = nn.LayerNorm(16)
        self.fc = nn.Linear(16, 3)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.fc(self.ln(self.emb(t)).transpose(1, 2).mean(dim=2))


def test_embedding_dimension_pruned_through_transpose() -> None:
    model = _Embed2()
    _check(model, torch.randint(0, 20, (2, 5)))
    assert model.emb.embedding_dim == 8 and model.ln.normalized_shape == (8,)
    assert model.fc.in_features == 8


def test_depthwise_and_residual() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pw = nn.Conv2d(8, 16, 1)
            self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
            self.bn = nn.BatchNorm2d(16)
            self.proj = nn.Conv2d(16, 8, 1)
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.head = nn.Conv2d(8, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = self.stem(x)
            return self.head(s + self.proj(self.bn(self.dw(self.pw(s)))))

    model = Block()
    _check(model, torch.randn(2, 3, 8, 8))
    assert model.dw.groups == model.dw.out_channels == model.pw.out_channels == 8
    assert model.stem.out_channels == model.proj.out_channels == model.head.in_channels == 4


class _Pooling(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.fc2 = nn.Linear(16, 3)
        self.scale = nn.Parameter(torch.ones(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)  # (N, T, 16)
        pooled = h.max(dim=1)[0]  # (N, 16): a (values, indices) pair
        return self.fc2(pooled) + (self.scale * h.transpose(1, 2)).sum(2).sum(1, keepdim=True)


def test_tuple_reductions_and_mismatched_broadcasts() -> None:
    model = _Pooling()
    _check(model, torch.randn(2, 5, 4))
    # `scale` (16, 1) broadcasts over the channel dimension of h^T: fc1 must keep its 16 outputs
    assert model.fc1.out_features == 16


@pytest.mark.parametrize("criterion", ["l1", "l2", "bn_scale", "fpgm", "random"])
def test_multihead_attention_with_every_criterion(criterion: str) -> None:
    model = _Embed().eval()
    x = torch.randint(0, 20, (2, 5))
    prune_(model, StructuredPruneConfig(ratio=0.5, criterion=criterion), example_inputs=x)
    assert model.mha.embed_dim == 8 and model(x).shape == (2, 3)


class _ViT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(1, 32, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, 32))
        self.pos = nn.Parameter(torch.randn(1, 17, 32))
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.patch(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1) + self.pos
        return self.head(self.enc(h)[:, 0])


def test_vit_with_class_token_and_transformer_encoder() -> None:
    model = _ViT()
    _check(model, torch.randn(2, 1, 16, 16))
    assert model.patch.out_channels == 16 and model.cls.shape == (1, 1, 16)
    assert model.pos.shape == (1, 17, 16) and model.head.in_features == 16
    for layer in model.enc.layers:
        assert layer.self_attn.embed_dim == 16 and layer.self_attn.head_dim == 4
        assert layer.linear1.out_features == 32 and layer.norm1.normalized_shape == (16,)


class _Dense(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(3, 16, 3, padding=1)
        self.c1 = nn.Sequential(nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 8, 3, padding=1))
        self.c2 = nn.Sequential(nn.BatchNorm2d(24), nn.ReLU(), nn.Conv2d(24, 8, 3, padding=1))
        self.head = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c0(x)
        x = torch.cat([x, self.c1(x)], 1)
        x = torch.cat([x, self.c2(x)], 1)
        return self.head(x.mean((2, 3)))


def test_densenet_style_concatenation() -> None:
    model = _Dense()
    _check(model, torch.randn(2, 3, 8, 8))
    assert model.c0.out_channels == 8 and model.c1[2].out_channels == 4
    assert model.c2[0].num_features == 12 and model.head.in_features == 16


def test_conv1d_transposed_convolution_and_channelwise_prelu() -> None:
    model = nn.Sequential(
        nn.Conv1d(2, 16, 3, padding=1),
        nn.BatchNorm1d(16),
        nn.PReLU(16),
        nn.ConvTranspose1d(16, 12, 4, stride=2, padding=1),
        nn.PReLU(),
        nn.Conv1d(12, 3, 1),
    )
    _check(model, torch.randn(2, 2, 10))
    assert model[0].out_channels == 8 and model[2].num_parameters == 8
    assert model[3].in_channels == 8 and model[3].out_channels == 6
    assert model[3].weight.shape == (8, 6, 4) and model[5].in_channels == 6


@pytest.mark.parametrize("criterion", ["l1", "l2", "bn_scale", "fpgm", "random"])
def test_transposed_convolution_with_every_criterion(criterion: str) -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ConvTranspose2d(8, 8, 2, stride=2), nn.Conv2d(8, 2, 1)
    )
    x = torch.randn(2, 1, 6, 6)
    prune_(model.eval(), StructuredPruneConfig(ratio=0.5, criterion=criterion), example_inputs=x)
    assert model[1].weight.shape == (4, 4, 2, 2) and model(x).shape == (2, 2, 8, 8)


def _heads_config(**kw: object) -> StructuredPruneConfig:
    return StructuredPruneConfig(ratio=0.5, prune_num_heads=True, **kw)  # type: ignore[arg-type]


def test_multihead_attention_loses_whole_heads_with_prune_num_heads() -> None:
    model = _Embed().eval()
    x = torch.randint(0, 20, (2, 5))
    fresh = copy.deepcopy(model)
    original = copy.deepcopy(model.mha)
    h = model.ln(model.emb(x)).detach()
    plan = prune_(model, _heads_config(), example_inputs=x)
    assert (model.mha.num_heads, model.mha.head_dim, model.mha.embed_dim) == (2, 4, 8)
    assert model.emb.embedding_dim == 8 and model.fc.in_features == 8
    (entry,) = [e for e in plan.entries if e.name == "mha"]
    kept = torch.tensor(entry.keep)
    starts = kept.view(-1, 4)[:, 0]
    assert torch.equal(kept.view(-1, 4), starts[:, None] + torch.arange(4)) and bool(
        (starts % 4 == 0).all()
    )
    # the kept heads compute exactly what they computed before: the original attention with the
    # removed channels zeroed on the way in and the removed heads cut from its output projection
    masked = torch.zeros_like(h)
    masked[..., kept] = h[..., kept]
    gone = torch.ones(16, dtype=torch.bool)
    gone[kept] = False
    with torch.no_grad():
        original.out_proj.weight[:, gone] = 0.0
        reference = original(masked, masked, masked)[0][..., kept]
        pruned = model.mha(h[..., kept], h[..., kept], h[..., kept])[0]
    assert torch.allclose(pruned, reference, atol=1e-6)
    apply_plan_(fresh, plan)  # the plan replays: whole heads again
    assert fresh.mha.num_heads == 2 and torch.equal(fresh(x), model(x))


def test_transformer_encoder_layers_lose_the_same_whole_heads() -> None:
    model = _ViT().eval()
    x = torch.randn(2, 1, 16, 16)
    fresh = copy.deepcopy(model)
    plan = prune_(model, _heads_config(), example_inputs=x)
    assert model(x).shape == (2, 10)
    for layer in model.enc.layers:
        attn = layer.self_attn
        assert (attn.num_heads, attn.head_dim, attn.embed_dim) == (2, 8, 16)
        assert layer.linear1.out_features == 32
    apply_plan_(fresh, plan)
    assert torch.equal(fresh(x), model(x))


def test_prune_num_heads_keeps_whole_heads_in_global_scope_and_is_validated() -> None:
    model = _Embed().eval()
    x = torch.randint(0, 20, (2, 5))
    prune_(model, _heads_config(scope="global", round_to=3), example_inputs=x)
    assert model.mha.head_dim == 4 and model.mha.embed_dim == 4 * model.mha.num_heads
    assert model.mha.num_heads < 4 and model(x).shape == (2, 3)
    config = _heads_config()
    assert config.to_dict()["prune_num_heads"] is True
    assert StructuredPruneConfig(**config.to_dict()) == config
    with pytest.raises(TypeError, match="`prune_num_heads` must be True or False"):
        StructuredPruneConfig(prune_num_heads="yes")  # type: ignore[arg-type]
