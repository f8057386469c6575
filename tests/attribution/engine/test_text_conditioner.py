"""The offline MiniLM text conditioner: shapes, mask, frozen encoder, no network."""

import os

import torch

from attribution.engine.text_conditioner import MINILM_DIM, MiniLMTextConditioner, minilm_model_dir


def test_encodes_prompts_to_masked_token_embeddings():
    cond = MiniLMTextConditioner(output_dim=32, max_length=16)
    emb, mask = cond(["a chorale by Bach", "a fast Irish reel on the fiddle, D major"], "cpu")
    assert emb.shape == (2, 16, 32) and mask.shape == (2, 16) and mask.dtype == torch.bool
    assert mask[0].sum() < mask[1].sum()  # the shorter prompt has fewer tokens
    assert torch.all(emb[~mask] == 0)  # padding positions carry nothing
    assert not torch.allclose(emb[0, 1], emb[1, 1])


def test_the_encoder_is_frozen_offline_and_outside_the_state_dict():
    cond = MiniLMTextConditioner(output_dim=32)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert (minilm_model_dir() / "model.safetensors").is_file()
    assert set(cond.state_dict()) == {"proj_out.weight", "proj_out.bias"}
    assert all(not p.requires_grad for p in cond.model.parameters())
    assert all(p.requires_grad for p in cond.parameters())  # the projection trains


def test_cached_encodings_equal_a_fresh_forward_pass():
    cond = MiniLMTextConditioner(output_dim=32, max_length=16)
    first, _ = cond.encode(["organ chorale", "string quartet"])
    again, _ = cond.encode(["string quartet", "organ chorale"])
    assert torch.equal(first[0], again[1]) and torch.equal(first[1], again[0])
    fresh = MiniLMTextConditioner(output_dim=32, max_length=16)
    fresh._cache.clear()
    recomputed, _ = fresh.encode(["string quartet"])
    assert first.shape[-1] == MINILM_DIM
    assert torch.allclose(recomputed[0], first[1], atol=1e-5)
