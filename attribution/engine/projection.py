"""Whitening and random projection of gradients (the first-order method's features).

To first order in the Eq. 6 step, tau_i = L(z_i, theta') - L(z_i, theta0) is

    tau_i ~ gbar_i . (theta' - theta0) = eta gbar_i^T (F + lambda)^-1 ghat          (first order)
          = eta (W gbar_i) . (W ghat),   W = (F + lambda)^-1/2 (elementwise: F is diagonal)

with gbar_i the gradient of item i's Eq. 2 loss at theta0 and ghat the query's unlearning
gradient. `whiten` applies W. A projection P (k x p) with E[P^T P] = I keeps inner products in
expectation, E[(P a) . (P b)] = a . b, so the whitened gradients can be stored as k numbers per
item instead of p. Kinds:

    sjlt        count sketch (a sparse Johnson-Lindenstrauss transform with one non-zero per
                column): coordinate j goes to bucket h(j) with sign s(j); P a costs O(p) and
                needs no matrix. Variance of (P a).(P b): (|a|^2 |b|^2 + (a.b)^2 - 2 sum_j
                a_j^2 b_j^2) / k.
    gaussian    dense i.i.d. N(0, 1/k) entries, generated in column blocks from a keyed seed
    rademacher  dense i.i.d. +-1/sqrt(k) entries, the same way
    factored    per weight matrix (out x in), P_out A P_in^T with independent Gaussian P_out
                (r x out) and P_in (r x in), in the spirit of LoGra's per-layer projections;
                a vector parameter (bias, norm) is count-sketched into its own r^2 buckets.
                With the diagonal Fisher the whitening does not factor over a layer's inputs
                and outputs, so the whitened gradient is formed first and then projected.
    none        no projection (k = p): the first-order form itself.

Every random number is keyed by (seed, parameter name, block), never by batch or order, so a
projection is the same in every process (randomness.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from attribution.engine.errors import EngineError
from attribution.engine.randomness import keyed_generator

PROJECTION_KINDS = ("sjlt", "gaussian", "rademacher", "factored", "none")
DENSE_BLOCK = 1 << 15  # columns of a dense projection generated at a time


def whiten(
    grads: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor], damping: float
) -> dict[str, torch.Tensor]:
    """W g = g / sqrt(F + lambda), elementwise (diagonal F, Sec. 2.2; lambda as in Eq. 6)."""
    return {name: grad / (fisher[name].to(grad) + damping).sqrt() for name, grad in grads.items()}


def flatten(tensors: dict[str, torch.Tensor], names: Iterable[str]) -> torch.Tensor:
    """Named tensors -> one (p,) vector, in the given name order."""
    return torch.cat([tensors[name].reshape(-1) for name in names])


@dataclass
class Projection:
    """P: (k, p) over named parameters with the given shapes (sorted by name)."""

    kind: str
    dim: int  # k (p when kind is "none")
    shapes: dict[str, tuple[int, ...]]
    seed: int
    _sketch: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in PROJECTION_KINDS:
            raise EngineError(
                f"Unknown projection {self.kind!r} (known: {', '.join(PROJECTION_KINDS)}).",
                field="projection",
            )
        self.names = sorted(self.shapes)
        self.total = sum(math.prod(shape) for shape in self.shapes.values())
        if self.kind == "none":
            self.dim = self.total
        if self.dim < 1:
            raise EngineError("The projection dimension must be at least 1.", field="projection")
        if self.kind == "factored":
            self._plan_factored()

    # count sketch ---------------------------------------------------------------------------
    def _buckets(self, name: str, size: int, buckets: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(bucket (size,) int64, sign (size,) float32) of one parameter, cached on CPU."""
        key = f"{name}:{buckets}"
        if key not in self._sketch:
            generator = keyed_generator(self.seed, "projection", name, buckets)
            bucket = torch.randint(0, buckets, (size,), generator=generator)
            sign = torch.randint(0, 2, (size,), generator=generator).float() * 2 - 1
            self._sketch[key] = (bucket, sign)
        return self._sketch[key]

    def _sjlt(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        device = tensors[self.names[0]].device
        out = torch.zeros(self.dim, dtype=torch.float64, device=device)  # (k,)
        for name in self.names:
            values = tensors[name].reshape(-1)
            bucket, sign = self._buckets(name, values.numel(), self.dim)
            out.index_add_(0, bucket.to(device), (values * sign.to(values)).double())
        return out

    # dense ----------------------------------------------------------------------------------
    def _dense_block(self, name: str, block: int, columns: int) -> torch.Tensor:
        """Columns [block * DENSE_BLOCK, ...) of P for one parameter, shape (k, columns)."""
        generator = keyed_generator(self.seed, f"projection:{self.kind}", name, block)
        if self.kind == "gaussian":
            values = torch.randn(self.dim, columns, generator=generator)
        else:
            values = torch.randint(0, 2, (self.dim, columns), generator=generator).float() * 2 - 1
        return values / math.sqrt(self.dim)

    def _dense(self, rows: dict[str, torch.Tensor]) -> torch.Tensor:
        """rows[name]: (B, numel) -> (B, k)."""
        first = rows[self.names[0]]
        out = torch.zeros(first.shape[0], self.dim, dtype=torch.float64, device=first.device)
        for name in self.names:
            values = rows[name]
            for block, start in enumerate(range(0, values.shape[1], DENSE_BLOCK)):
                part = values[:, start : start + DENSE_BLOCK]  # (B, c)
                matrix = self._dense_block(name, block, part.shape[1]).to(part)  # (k, c)
                out += (part @ matrix.T).double()
        return out

    # factored -------------------------------------------------------------------------------
    def _plan_factored(self) -> None:
        """Split k over the parameters: a matrix gets r x r (rows and columns projected
        separately), a vector r^2 count-sketch buckets, r the same for every parameter."""
        count = len(self.names)
        self.rank = max(1, math.isqrt(max(1, self.dim // count)))
        self.dim = count * self.rank * self.rank

    def _factors(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        rows, columns = self.shapes[name][0], math.prod(self.shapes[name][1:])
        generator = keyed_generator(self.seed, "projection:factored", name, self.rank)
        left = torch.randn(self.rank, rows, generator=generator) / math.sqrt(self.rank)
        right = torch.randn(self.rank, columns, generator=generator) / math.sqrt(self.rank)
        return left, right  # (r, out), (r, in)

    def _factored(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        for name in self.names:
            value = tensors[name]
            if value.dim() >= 2:
                left, right = self._factors(name)
                matrix = value.reshape(value.shape[0], -1)  # (out, in)
                parts.append((left.to(matrix) @ matrix @ right.to(matrix).T).reshape(-1))
            else:
                size = self.rank * self.rank
                bucket, sign = self._buckets(name, value.numel(), size)
                out = torch.zeros(size, dtype=torch.float64, device=value.device)
                out.index_add_(0, bucket.to(value.device), (value * sign.to(value)).double())
                parts.append(out)
        return torch.cat([part.double() for part in parts])  # (k,)

    # the projection -------------------------------------------------------------------------
    def apply(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """P a for one set of named tensors (shapes as declared) -> (k,) float64."""
        if set(tensors) != set(self.shapes):
            raise EngineError("The tensors to project do not match the projection's weights.")
        if self.kind == "none":
            return flatten(tensors, self.names).double()
        if self.kind == "sjlt":
            return self._sjlt(tensors)
        if self.kind == "factored":
            return self._factored(tensors)
        rows = {name: tensors[name].reshape(1, -1) for name in self.names}
        return self._dense(rows)[0]

    def apply_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """P applied to each row of a flat (B, p) matrix (names in sorted order) -> (B, k)."""
        assert rows.shape[1] == self.total, rows.shape
        named, offset = {}, 0
        for name in self.names:
            size = math.prod(self.shapes[name])
            named[name] = rows[:, offset : offset + size]
            offset += size
        if self.kind in ("gaussian", "rademacher"):
            return self._dense(named)
        if self.kind == "sjlt":  # every row at once, each parameter's buckets in one call
            out = torch.zeros(rows.shape[0], self.dim, dtype=torch.float64, device=rows.device)
            for name in self.names:
                values = named[name]  # (B, numel)
                bucket, sign = self._buckets(name, values.shape[1], self.dim)
                out.index_add_(1, bucket.to(rows.device), (values * sign.to(values)).double())
            return out
        return torch.stack(
            [
                self.apply({name: named[name][b].reshape(self.shapes[name]) for name in self.names})
                for b in range(rows.shape[0])
            ]
        )


def projection_for(params: dict[str, torch.Tensor], kind: str, dim: int, seed: int) -> Projection:
    """The projection of the given weights (their shapes) of a config's kind and k."""
    return Projection(kind, dim, {name: tuple(p.shape) for name, p in params.items()}, seed)
