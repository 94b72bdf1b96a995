from __future__ import annotations

import torch

from slimtune.nas import CNNSupernet, MLPSupernet, Supernet, TransformerSupernet


def make(name: str) -> tuple[Supernet, torch.Tensor]:
    """A small supernet of each kind with BatchNorm statistics that are not the defaults."""
    torch.manual_seed(0)
    net: Supernet
    if name.startswith("mlp"):
        norm, head = {
            "mlp": ("none", "shared"),
            "mlp-bn": ("batch", "shared"),
            "mlp-ln": ("layer", "shared"),
            "mlp-bn-heads": ("batch", "per_depth"),
        }[name]
        net, x = (
            MLPSupernet(
                16, 5, width_choices=(8, 16, 24), depth_choices=(1, 2, 3), norm=norm, head=head
            ),
            torch.randn(6, 16),
        )
    elif name == "cnn":
        net = CNNSupernet(
            1,
            5,
            stage_widths=((8, 12, 16), (16, 24, 32)),
            depth_choices=(1, 2),
            kernel_choices=(3, 5),
        )
        x = torch.randn(4, 1, 12, 12)
    else:
        net = TransformerSupernet(
            6,
            5,
            5,
            embed_choices=(16, 24, 32),
            depth_choices=(1, 2),
            head_choices=(1, 2),
            ratio_choices=(1, 2),
            head_dim=8,
        )
        x = torch.randn(4, 5, 6)
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(x * 2 + 1)
    return net.eval(), x


KINDS = ["mlp", "mlp-bn", "mlp-ln", "mlp-bn-heads", "cnn", "transformer"]
