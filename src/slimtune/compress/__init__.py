"""Compression transforms in plain PyTorch: ``prune``, ``quantize`` and ``distill``.

Each subpackage works on an ordinary ``nn.Module`` and never needs a study; import the one you
use, for example ``from slimtune.compress import prune``.
"""

from __future__ import annotations
