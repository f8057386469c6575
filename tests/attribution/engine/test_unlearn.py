"""The unlearning update (Eq. 6) with a known Fisher."""

import torch

from attribution.engine.fisher import block_parameters, target_parameters
from attribution.engine.items import encode_item
from attribution.engine.loss import draw, row_losses
from attribution.engine.unlearn import unlearn


def hand_query_gradient(model, query, cfg, names):
    """grad of (1/T_u) sum_t L_t(z_hat) with M_U, from one batch of all draws."""
    params = dict(model.module.named_parameters())
    t, noise = draw(model, query, cfg, "unlearn", range(cfg.unlearn_timesteps))
    loss = row_losses(model, query, t, noise, mask=cfg.unlearn_mask).mean()
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    return dict(zip(names, grads, strict=True))


def test_update_equals_eq6_with_a_known_fisher(tiny_model, tiny_train_set, tiny_cfg):
    cfg = tiny_cfg.replace(lr=1e-3, damping=0.1, target_layers="self_attn")
    query = encode_item(tiny_model, tiny_train_set.items[0], cfg)
    generator = torch.Generator().manual_seed(7)
    fisher = {  # a known diagonal Fisher: positive, spread over two orders of magnitude
        name: 10 ** (-2 * torch.rand(p.shape, generator=generator))
        for name, p in block_parameters(tiny_model).items()
    }
    before = {n: p.detach().clone() for n, p in tiny_model.module.named_parameters()}
    theta = unlearn(tiny_model, query, fisher, cfg, n_train=6)

    names = list(target_parameters(tiny_model, "self_attn"))
    assert set(theta) == set(names) and all(".self_attn." in n for n in names)
    grad = hand_query_gradient(tiny_model, query, cfg, names)
    lam = 0.1 * float(torch.cat([fisher[n].flatten() for n in names]).double().mean())
    for name in names:
        expected = before[name] + 1e-3 * grad[name] / (fisher[name] + lam)
        torch.testing.assert_close(theta[name], expected, rtol=1e-5, atol=1e-8)
        assert not torch.equal(theta[name], before[name])
    # the model itself is left at theta0, bit for bit
    for name, param in tiny_model.module.named_parameters():
        assert torch.equal(param, before[name])

    # explicit 1/N: eta = lr / N, so lr 6e-3 with N = 6 is the same update as eta = 1e-3
    explicit = cfg.replace(lr=6e-3, lr_times_inverse_n=True)
    theta_n = unlearn(tiny_model, query, fisher, explicit, n_train=6)
    for name in names:
        torch.testing.assert_close(theta_n[name], theta[name], rtol=1e-6, atol=1e-9)


def two_step_setup(tiny_model, tiny_train_set, tiny_cfg):
    cfg = tiny_cfg.replace(lr=1e-3, damping=0.1, target_layers="cross_attn_to_kv", steps=2)
    query = encode_item(tiny_model, tiny_train_set.items[1], cfg)
    fisher = {n: torch.ones_like(p) for n, p in block_parameters(tiny_model).items()}
    names = list(target_parameters(tiny_model, "cross_attn_to_kv"))
    assert names and all(".cross_attn.to_kv." in n for n in names)
    theta1 = unlearn(tiny_model, query, fisher, cfg.replace(steps=1), n_train=6)
    params = dict(tiny_model.module.named_parameters())
    theta0 = {n: params[n].detach().clone() for n in names}
    with torch.no_grad():
        for n in names:
            params[n].copy_(theta1[n])
    grad_at_theta1 = hand_query_gradient(tiny_model, query, cfg, names)
    with torch.no_grad():
        for n in names:
            params[n].copy_(theta0[n])
    return cfg, query, fisher, names, theta0, theta1, grad_at_theta1


def test_two_steps_accumulate_onto_the_current_weights_by_default(
    tiny_model, tiny_train_set, tiny_cfg
):
    cfg, query, fisher, names, _, theta1, grad_at_theta1 = two_step_setup(
        tiny_model, tiny_train_set, tiny_cfg
    )
    assert cfg.step_rule == "accumulate"
    theta2 = unlearn(tiny_model, query, fisher, cfg, n_train=6)
    for n in names:  # theta_2 = theta_1 + eta (F + lambda)^-1 grad L(z_hat, theta_1), lambda = 0.1
        torch.testing.assert_close(
            theta2[n], theta1[n] + 1e-3 * grad_at_theta1[n] / 1.1, rtol=1e-5, atol=1e-8
        )


def test_two_fixed_point_steps_iterate_eq6_from_theta0(tiny_model, tiny_train_set, tiny_cfg):
    cfg, query, fisher, names, theta0, _, grad_at_theta1 = two_step_setup(
        tiny_model, tiny_train_set, tiny_cfg
    )
    theta2 = unlearn(tiny_model, query, fisher, cfg.replace(step_rule="fixed_point"), n_train=6)
    for n in names:  # theta_2 = theta0 + eta (F + lambda)^-1 grad L(z_hat, theta_1), lambda = 0.1
        torch.testing.assert_close(
            theta2[n], theta0[n] + 1e-3 * grad_at_theta1[n] / 1.1, rtol=1e-5, atol=1e-8
        )
    # the two rules differ as soon as there are two steps
    accumulated = unlearn(tiny_model, query, fisher, cfg, n_train=6)
    assert any(not torch.allclose(accumulated[n], theta2[n]) for n in names)


def test_a_target_update_norm_sets_the_step_by_its_effect(tiny_model, tiny_train_set, tiny_cfg):
    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.items import query_from_training_item
    from attribution.engine.methods import METHODS
    from attribution.engine.pipeline import attribute

    store = ArtifactStore(None)
    query = query_from_training_item(tiny_train_set.items[1])
    cfg = tiny_cfg.replace(target_update_norm=3e-4, first_order_timesteps=32)
    exact = attribute(METHODS["unlearning"], tiny_model, query, tiny_train_set, cfg, store=store)
    stats = exact.provenance["statistics"]
    assert abs(stats["update_relative_norm"] / 3e-4 - 1) < 1e-3, stats
    assert stats["eta"] != tiny_cfg.lr and stats["update_regime"] == "first_order"
    # The first-order method predicts the same step from the same gradient and Fisher.
    fast = attribute(METHODS["first_order"], tiny_model, query, tiny_train_set, cfg, store=store)
    assert abs(fast.provenance["statistics"]["eta"] / stats["eta"] - 1) < 1e-4
    assert abs(fast.provenance["statistics"]["update_relative_norm"] / 3e-4 - 1) < 1e-4


def test_the_update_regime_names_steps_float32_cannot_resolve_or_first_order_cannot_read(
    tiny_model, tiny_train_set, tiny_cfg
):
    from attribution.engine.items import query_from_training_item
    from attribution.engine.methods import unlearning_scores
    from attribution.engine.unlearn import unresolved_update_message

    query = query_from_training_item(tiny_train_set.items[2])
    regimes = {}
    for norm in (1e-12, 1e-4, 1e-1):  # steps chosen by the relative norm they give
        stats = unlearning_scores(
            tiny_model, query, tiny_train_set, tiny_cfg.replace(target_update_norm=norm)
        ).provenance["statistics"]
        regimes[norm] = stats["update_regime"]
        assert (unresolved_update_message(stats) is None) == (regimes[norm] != "unresolved")
    assert regimes == {1e-12: "unresolved", 1e-4: "first_order", 1e-1: "beyond_first_order"}
    assert "below what float32 arithmetic resolves" in unresolved_update_message(
        {"update_regime": "unresolved", "weights_changed_fraction": 0.0, "update_relative_norm": 0}
    )


def test_attribution_arithmetic_is_float32_unless_tf32_is_allowed():
    from attribution.engine.config import EngineConfig
    from attribution.engine.pipeline import configure_arithmetic

    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True  # PyTorch's default for convolutions
        configure_arithmetic(EngineConfig())
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        configure_arithmetic(EngineConfig(allow_tf32=True))
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
    assert "allow_tf32" not in EngineConfig().fisher_key()  # CPU keys unchanged
    assert EngineConfig(allow_tf32=True).scoring_key()["allow_tf32"] is True
    assert EngineConfig(device="cuda").fisher_key()["allow_tf32"] is False  # GPU work says so


def test_activation_checkpointing_changes_memory_not_the_numbers(
    tiny_model, tiny_train_set, tiny_cfg, monkeypatch
):
    import torch.utils.checkpoint

    from attribution.engine.items import query_from_training_item
    from attribution.engine.methods import unlearning_scores

    recomputed_blocks = []
    original = torch.utils.checkpoint.checkpoint

    def counting(function, *args, **kwargs):
        recomputed_blocks.append(function)
        return original(function, *args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", counting)
    query = query_from_training_item(tiny_train_set.items[0])
    kept = unlearning_scores(tiny_model, query, tiny_train_set, tiny_cfg)
    assert not recomputed_blocks
    recomputed = unlearning_scores(
        tiny_model, query, tiny_train_set, tiny_cfg.replace(activation_checkpointing=True)
    )
    assert recomputed_blocks  # the blocks ran under torch.utils.checkpoint
    assert recomputed.tau.tobytes() == kept.tau.tobytes()
    assert recomputed.provenance["artifact_sha256"] == kept.provenance["artifact_sha256"]
