"""Gradient features of the first-order method (methods/first_order.py).

    gbar_i = grad_theta L(z_i, theta0),   L(z_i, theta) = (1/T_s) sum_t L_t(z_i, theta)   (Eq. 2)

over exactly the T_s = cfg.score_timesteps keyed draws (stream "score", mask M_L when
cfg.loss_mask) that the exact method's Eq. 2 losses use, on the target weights; then whitened
by (F + lambda)^-1/2 and projected to k numbers (projection.py):

    phi_i = P (F + lambda)^-1/2 gbar_i                                                 (k,)

The query's side is the same with the unlearning gradient ghat (Eq. 6, mask M_U, stream
"unlearn", the first cfg.first_order_timesteps draws): psi = P (F + lambda)^-1/2 ghat, and

    tau_i ~ eta * steps * phi_i . psi                              (first order in Eq. 6's step)
"""

from __future__ import annotations

import torch

from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.fisher import target_parameters
from attribution.engine.items import EncodedItem
from attribution.engine.projection import Projection, projection_for, whiten
from attribution.engine.unlearn import damping_value, mean_gradient, query_gradient


def item_gradient(
    model: EngineModel,
    item: EncodedItem,
    cfg: EngineConfig,
    params: dict[str, torch.nn.Parameter],
) -> dict[str, torch.Tensor]:
    """gbar = grad of (1/T_s) sum_t L_t(z, theta0) over the Eq. 2 scoring draws (Sec. 2.1)."""
    return mean_gradient(
        model, item, cfg, params, stream="score", timesteps=cfg.score_timesteps,
        mask=cfg.loss_mask,
    )  # fmt: skip


class FeatureMap:
    """phi(gradient) = P (F + lambda)^-1/2 gradient for one model, Fisher and config.

    Without a Fisher, the gradient is projected as it is, P gradient (the gradient-similarity
    method's features, methods/gradient_similarity.py): the same P, not whitened."""

    def __init__(
        self, model: EngineModel, fisher: dict[str, torch.Tensor] | None, cfg: EngineConfig
    ) -> None:
        self.model, self.cfg = model, cfg
        self.params = target_parameters(model, cfg.target_layers)
        self.fisher = None if fisher is None else {name: fisher[name] for name in self.params}
        self.damping = (
            0.0 if fisher is None else damping_value(fisher, list(self.params), cfg.damping)
        )
        self.projection: Projection = projection_for(
            self.params, cfg.projection, cfg.projection_dim, cfg.seed
        )

    @property
    def dim(self) -> int:
        return self.projection.dim

    def __call__(self, grads: dict[str, torch.Tensor]) -> torch.Tensor:
        """(k,) float64 on CPU."""
        if self.fisher is None:
            return self.projection.apply(grads).cpu()
        return self.projection.apply(whiten(grads, self.fisher, self.damping)).cpu()

    def item(self, item: EncodedItem) -> torch.Tensor:
        """phi_i of one training item, (k,)."""
        return self(item_gradient(self.model, item, self.cfg, self.params))

    def query_gradient(self, query: EncodedItem) -> dict[str, torch.Tensor]:
        """ghat over the first cfg.first_order_timesteps unlearning draws (Eq. 6, mask M_U)."""
        cfg = self.cfg.replace(unlearn_timesteps=self.cfg.first_order_timesteps)
        return query_gradient(self.model, query, cfg, self.params)
