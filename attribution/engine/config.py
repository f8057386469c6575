"""Every knob of the unlearning attribution engine, in one frozen dataclass.

Defaults are the best settings of Choi et al., "Large-Scale Training Data Attribution for Music
Generative Models via Unlearning" (Sec. 3.2, Table 1): learning rate 1e-6 (times Eq. 6's 1/N),
one step, all transformer blocks unlearned, the "mixed" mask strategy (M_U on, M_L off), and
unlearning gradients averaged over 2048 random timesteps (Sec. 3.1). Where the paper is silent
(T for the scoring losses and the Fisher, how timesteps are spread, damping, seed, batch size)
the choice is ours and is commented.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

TargetLayers = Literal["all_blocks", "self_attn", "cross_attn", "cross_attn_to_kv"]
TARGET_LAYER_CHOICES: tuple[str, ...] = get_args(TargetLayers)
TimestepSequence = Literal["sobol", "iid"]
TIMESTEP_SEQUENCE_CHOICES: tuple[str, ...] = get_args(TimestepSequence)
StepRule = Literal["accumulate", "fixed_point"]
STEP_RULE_CHOICES: tuple[str, ...] = get_args(StepRule)
ProjectionKind = Literal["sjlt", "gaussian", "rademacher", "factored", "none"]
PROJECTION_CHOICES: tuple[str, ...] = get_args(ProjectionKind)


@dataclass(frozen=True)
class EngineConfig:
    # Eq. 6 step size eta. The paper's update is theta0 + (1/N) F^-1 grad, and its best
    # "learning rate" is 1e-6 (Sec. 3.2). By default the 1/N of Eq. 6 stays explicit and the
    # learning rate multiplies it: eta = lr / N. `lr_times_inverse_n=False` reads the learning
    # rate as replacing 1/N instead (eta = lr). On the demo model that reading moves the weights
    # far outside the first-order regime Eq. 4 assumes (docs/decisions/0001-eta-lr-over-n.md).
    lr: float = 1e-6
    lr_times_inverse_n: bool = True
    # Number of Eq. 6 updates. Step k evaluates the unlearning gradient at theta_{k-1}; step 1 is
    # Eq. 6 at theta0, so with one step both rules below give the same theta'.
    steps: int = 1
    # How steps combine. "accumulate" (as the reference implementation of Wang et al. does it):
    # each update is added to the current weights, theta_k = theta_{k-1} + eta (F + lambda)^-1
    # grad L(z_hat, theta_{k-1}). "fixed_point": every step restarts from theta0,
    # theta_k = theta0 + eta (F + lambda)^-1 grad L(z_hat, theta_{k-1}), iterating Eq. 6 as the
    # stationarity condition of Eq. 5 that it is.
    step_rule: StepRule = "accumulate"
    # Damping lambda added to the diagonal Fisher before inverting (the paper does not say; ours).
    # It is relative: lambda = damping * mean(F) over the unlearned parameters, so it does not
    # depend on the loss scale of a particular model. 0 gives the paper's plain F^-1.
    damping: float = 1e-3
    # Which weights Eq. 6 changes: every weight of every transformer block (paper's best),
    # self-attention only, cross-attention only, or only cross-attention's to_kv projection.
    target_layers: TargetLayers = "all_blocks"
    # Sec. 2.3 masks. M_U: the unlearning loss of the query ignores padded latent frames.
    # M_L: the scoring losses ignore padded frames. Paper's "mixed" strategy: M_U on, M_L off.
    unlearn_mask: bool = True
    loss_mask: bool = False
    # Timesteps the unlearning gradient is averaged over (Sec. 3.1: 2048).
    unlearn_timesteps: int = 2048
    # Timesteps (with their noise) per training item for the Eq. 2 losses. Ours: both losses of
    # an item use the same draws (common random numbers), so the noise of the loss itself
    # cancels in tau; what is left is the noise of the first-order change, which on the demo
    # model still decided near-twins at T = 16 and no longer did at 32
    # (docs/decisions/0004-score-timesteps.md). Costs N*T forward passes per query.
    score_timesteps: int = 32
    # Timesteps per training item for the diagonal Fisher (Sec. 2.2), one gradient each.
    fisher_timesteps: int = 16
    # How the timesteps of a "uniform" timestep sampler are drawn, for every stream (Fisher,
    # unlearning, scores). stable-audio-tools trains on t from a scrambled Sobol sequence, not
    # i.i.d. draws; "sobol" mirrors that: each (stream, item) gets its own scrambled Sobol
    # sequence, and draw k is its k-th point, so t still depends only on (seed, stream, item id,
    # k), and the first 2^m draws of an item put one t in each of 2^m equal intervals. That
    # removes most of the timestep noise from a T-draw loss average
    # (docs/decisions/0003-sobol-timesteps.md). "iid": independent uniform draws. Other samplers
    # draw i.i.d., as training does.
    timestep_sequence: TimestepSequence = "sobol"
    # Root of every random draw (timesteps, noise, stochastic encoders); draws are keyed by
    # (seed, stream, item id, timestep index), never by batch position.
    seed: int = 0
    device: str = "cpu"
    # Rows (timestep draws of one item) per forward pass. Results do not depend on it beyond
    # floating-point reassociation.
    batch_size: int = 16
    # The first-order method (methods/first_order.py) only. Its query gradient is averaged
    # over this many unlearning draws (the first draws of the same sequence the exact method
    # averages over cfg.unlearn_timesteps), and the whitened training gradients are stored
    # projected to `projection_dim` numbers by a `projection` (projection.py). The choices
    # rest on the measured fidelity curves (docs/decisions/0017-first-order-attribution.md).
    first_order_timesteps: int = 256
    projection: ProjectionKind = "sjlt"
    projection_dim: int = 32768
    # The second opinions (methods/activation_similarity.py, representer_points.py): the DiT
    # sees the query and every training item at these many draws (t, noise), the same draws
    # for all of them (keyed by draw index alone, activations.shared_draws), so two items'
    # activations are compared at the same noisy points. Ours; the paper does not say.
    similarity_timesteps: int = 8
    # Audio similarity (methods/audio_similarity.py): windows and hop as shares of the model's
    # window. Sec. 3.3 takes 10 s windows with a 1 s hop on a DiT window of about 120 s
    # (2584 latent frames of 2048 samples at 44.1 kHz), so 10/120 and 1/120 of it.
    audio_window_share: float = 10 / 120
    audio_hop_share: float = 1 / 120
    # Representer points (methods/representer_points.py): lambda of the L2-regularised last
    # layer of Yeh et al. (Sec. 3.3, alpha_i = (Phi(z_i) - y_i) / (-lambda n)). The paper does
    # not give it; it scales every score alike.
    representer_lambda: float = 1.0

    # Eq. 6's step chosen by its effect instead of by lr: eta such that the first update moves
    # the target weights by this norm relative to theirs (||theta' - theta0|| / ||theta0||).
    # None: eta = lr / N (or lr). Eq. 2 reads as a first-order effect only while the update is
    # small, and float32 resolves it only while it is not too small (unlearn.update_regime).
    target_update_norm: float | None = None
    # A training track longer than the model's window is scored on up to this many windows,
    # one per stratum of its possible crops (items.window_offsets); the draws of each of its
    # losses are split into consecutive blocks, one per window (EncodedItem.window_of), so its
    # loss averages over them. 1: the first window only.
    max_windows: int = 1
    # Recompute each transformer block's activations in the backward pass (stable-audio-tools'
    # training does) instead of keeping them: less memory per gradient row, one more forward.
    # The values are the same either way, so it is not part of any artifact's key.
    activation_checkpointing: bool = False
    # TF32 matrix products and convolutions on CUDA (faster, 10 mantissa bits: an update near
    # float32 resolution would vanish). Off: attribution arithmetic is float32 throughout.
    allow_tf32: bool = False

    def __post_init__(self) -> None:
        assert self.target_layers in TARGET_LAYER_CHOICES, self.target_layers
        assert self.timestep_sequence in TIMESTEP_SEQUENCE_CHOICES, self.timestep_sequence
        assert self.step_rule in STEP_RULE_CHOICES, self.step_rule
        assert self.projection in PROJECTION_CHOICES, self.projection
        assert self.first_order_timesteps >= 1 and self.projection_dim >= 1
        assert self.steps >= 1 and self.unlearn_timesteps >= 1
        assert self.score_timesteps >= 1 and self.fisher_timesteps >= 1 and self.batch_size >= 1
        assert self.damping >= 0.0 and self.lr > 0.0
        assert self.target_update_norm is None or self.target_update_norm > 0.0
        assert self.max_windows >= 1
        assert self.similarity_timesteps >= 1 and self.representer_lambda > 0.0
        assert 0.0 < self.audio_window_share <= 1.0 and 0.0 < self.audio_hop_share <= 1.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> EngineConfig:
        return dataclasses.replace(self, **changes)

    def encoding_key(self) -> dict[str, Any]:
        """The fields the training-set encodings depend on (a stochastic encoder's draws, where
        they run, and which windows of long tracks are encoded)."""
        # TF32 changes every number a GPU computes; on CPU it does nothing, so CPU keys stay as
        # they were. (CUDA artifacts made before the engine turned it off used cuDNN's TF32:
        # their keys lack the field, so they are not reused.)
        on_gpu = self.device.startswith("cuda")
        return {
            "seed": self.seed,
            "device": self.device,
            **({"allow_tf32": self.allow_tf32} if on_gpu or self.allow_tf32 else {}),
            **({"max_windows": self.max_windows} if self.max_windows != 1 else {}),
        }

    def scoring_key(self) -> dict[str, Any]:
        """The fields that the theta0 losses depend on (cache key of the base-loss artifact).

        The batch size is part of it: rows batched differently may round differently, and the
        theta0 and theta' losses of an item must come from the same computation for tau to be
        exactly 0 when theta' = theta0.
        """
        return {
            **self.encoding_key(),
            "score_timesteps": self.score_timesteps,
            "loss_mask": self.loss_mask,
            "timestep_sequence": self.timestep_sequence,
            "batch_size": self.batch_size,
        }

    def fisher_key(self) -> dict[str, Any]:
        """The fields that the Fisher depends on (cache key of the Fisher artifact). It has one
        backward pass per draw, so the batch size does not enter."""
        return {
            **self.encoding_key(),
            "fisher_timesteps": self.fisher_timesteps,
            "timestep_sequence": self.timestep_sequence,
        }

    def gradients_key(self) -> dict[str, Any]:
        """The fields the gradient-similarity method's stored training gradients depend on:
        the features' without the Fisher and damping (they are not whitened)."""
        return {
            **self.scoring_key(),
            "target_layers": self.target_layers,
            "projection": self.projection,
            "projection_dim": self.projection_dim,
        }

    def features_key(self) -> dict[str, Any]:
        """The fields the first-order method's stored training features depend on: the draws
        of the Eq. 2 losses (their gradients), the Fisher and damping that whiten them, the
        target weights and the projection."""
        return {
            **self.scoring_key(),
            **self.fisher_key(),
            "damping": self.damping,
            "target_layers": self.target_layers,
            "projection": self.projection,
            "projection_dim": self.projection_dim,
        }
