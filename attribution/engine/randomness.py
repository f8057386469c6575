"""Randomness keyed by what it belongs to, never by batch position (STYLE.md, "The engine").

Every draw (a timestep t and its noise, a stochastic encoder's sample) comes from its own
`torch.Generator`, seeded from SHA-256 of (seed, stream, item id, index); a uniform timestep
is by default point `index` of the (stream, item)'s own scrambled Sobol sequence, whose
scramble is seeded the same way (loss.sobol_points). A score therefore does
not depend on batch size, order or sharding, and theta0 and theta' see the same draws for the
same item (common random numbers, Eq. 2). Streams separate uses: "score" (Eq. 2 losses),
"fisher" (Sec. 2.2), "unlearn" (Eq. 6 query gradient), "encode" (pretransform sampling), so the
query's unlearning draws never coincide with a training item's scoring draws even when the
query is that training item (Train-to-Train, Sec. 3.2).
"""

from __future__ import annotations

import hashlib


def stable_seed(seed: int, stream: str, item_id: str, index: int) -> int:
    """A 63-bit seed from SHA-256; identical across processes, platforms and Python runs."""
    key = f"{seed}\x1f{stream}\x1f{item_id}\x1f{index}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") & ((1 << 63) - 1)


def keyed_generator(seed: int, stream: str, item_id: str, index: int):
    """A CPU `torch.Generator` for one (stream, item, index) draw."""
    import torch

    generator = torch.Generator(device="cpu")
    generator.manual_seed(stable_seed(seed, stream, item_id, index))
    return generator
