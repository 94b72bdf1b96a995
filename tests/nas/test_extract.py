from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from slimtune.nas import ELASTIC_TYPES, extract, recalibrate_bn_
from tests.nas._supernets import KINDS, make


@pytest.mark.parametrize("kind", KINDS)
def test_extraction_is_exact_for_20_random_architectures(kind: str) -> None:
    net, x = make(kind)
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(20):
        arch = net.sample_arch(rng)
        seen.add(tuple(sorted(arch.items())))
        net.set_arch(arch)
        with torch.no_grad():
            expected = net(x)
            got = extract(net, arch).eval()(x)
        assert torch.equal(expected, got), arch
    assert len(seen) > 5


@pytest.mark.parametrize("kind", KINDS)
def test_extracted_module_is_plain_and_independent(kind: str) -> None:
    net, x = make(kind)
    small = net.smallest_arch()
    plain = extract(net, small)
    assert not any(isinstance(m, ELASTIC_TYPES) for m in plain.modules())
    assert sum(p.numel() for p in plain.parameters()) < sum(p.numel() for p in net.parameters())
    before = plain.eval()(x).detach().clone()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    torch.testing.assert_close(plain(x), before, rtol=0, atol=0)  # copies, not views
    # the supernet's own active architecture is untouched by extract
    assert net.arch == net.largest_arch()
    torch.fx.symbolic_trace(plain)  # an ordinary traceable module


@pytest.mark.parametrize("kind", KINDS)
def test_sort_channels_keeps_the_largest_network_function(kind: str) -> None:
    net, x = make(kind)
    net.set_arch(net.largest_arch())
    with torch.no_grad():
        before = net(x)
        net.sort_channels_()  # type: ignore[operator]
        after = net(x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_extract_rejects_a_model_without_elastic_layers() -> None:
    with pytest.raises(TypeError, match="no elastic layers"):
        extract(nn.Sequential(nn.Linear(3, 3)), {})


def test_recalibration_matches_plain_batchnorm_statistics() -> None:
    net, x = make("cnn")
    arch = net.smallest_arch()
    batches = [torch.randn(8, 1, 12, 12) * 3 + 2 for _ in range(4)]
    used = recalibrate_bn_(net, batches, arch=arch)
    assert used == 4 and not net.training
    plain = extract(net, arch)
    # recalibrating the extracted module on the same batches gives the same statistics
    recalibrate_bn_(plain, batches)
    with torch.no_grad():
        torch.testing.assert_close(net(x), plain(x), rtol=1e-5, atol=1e-5)


def test_recalibration_errors_are_clear() -> None:
    net, _ = make("mlp")
    with pytest.raises(ValueError, match="no BatchNorm"):
        recalibrate_bn_(net, [torch.randn(2, 16)])
    cnn, _ = make("cnn")
    with pytest.raises(ValueError, match="empty"):
        recalibrate_bn_(cnn, [])
    with pytest.raises(TypeError, match="needs a Supernet"):
        recalibrate_bn_(nn.Sequential(nn.BatchNorm1d(3)), [torch.randn(2, 3)], arch={})


def test_zero_init_residual_blocks_start_as_identity() -> None:
    from slimtune.nas import CNNSupernet

    torch.manual_seed(0)
    net = CNNSupernet(
        1, 10, stage_widths=((4, 8),), depth_choices=(1, 2, 3), zero_init_residual=True
    )
    arch = {**net.largest_arch()}
    sub = net.extract(arch).eval()
    net.set_arch(arch)
    net.eval()
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(net(x), sub(x))
    # every residual block adds zero to its input: depth 3 computes what depth 1 computes
    shallow = net.canonical({**arch, "stage0.depth": 1})
    net.set_arch(shallow)
    assert torch.allclose(net(x), sub(x))
    with pytest.raises(TypeError, match="`zero_init_residual` must be True or False, got 1"):
        CNNSupernet(zero_init_residual=1)  # type: ignore[arg-type]


def test_mlp_norm_is_validated_and_batchnorm_recalibrates() -> None:
    from slimtune.nas import MLPSupernet

    with pytest.raises(ValueError, match="`norm` must be"):
        MLPSupernet(4, 2, norm="group")  # type: ignore[arg-type]
    net, x = make("mlp-bn")
    arch = net.smallest_arch()
    batches = [torch.randn(8, 16) * 3 + 2 for _ in range(4)]
    recalibrate_bn_(net, batches, arch=arch)
    plain = extract(net, arch)
    assert any(isinstance(m, nn.BatchNorm1d) for m in plain.modules())
    recalibrate_bn_(plain, batches)
    with torch.no_grad():
        torch.testing.assert_close(net(x), plain(x), rtol=1e-5, atol=1e-5)


def test_mlp_per_depth_heads_are_extracted_and_kept_by_channel_sorting() -> None:
    from slimtune.nas import MLPSupernet

    with pytest.raises(ValueError, match="`head` must be"):
        MLPSupernet(4, 2, head="each")  # type: ignore[arg-type]
    net, x = make("mlp-bn-heads")
    full = [net.canonical({**net.largest_arch(), "depth": d}) for d in net.depth_choices]
    outputs = []
    for arch in full:
        net.set_arch(arch)
        with torch.no_grad():
            outputs.append(net(x))
        # each depth ends with its own head, and the extracted module carries that head
        plain = extract(net, arch).eval()
        assert torch.equal(plain[-1].weight, net.output_layer(arch["depth"]).weight)
    net.sort_channels_()
    for arch, before in zip(full, outputs, strict=True):
        net.set_arch(arch)
        with torch.no_grad():
            torch.testing.assert_close(net(x), before, rtol=1e-5, atol=1e-5)
