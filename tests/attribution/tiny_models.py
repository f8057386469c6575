"""The tiny stable-audio-tools DiT config that the attribution tests build (seconds on CPU)."""


def tiny_dit_config(
    *,
    sample_rate: int,
    sample_size: int,
    patch_size: int,
    embed_dim: int = 64,
    num_heads: int = 2,
    max_seconds: int = 4,
) -> dict:
    """A ``diffusion_cond`` DiT on ``patched`` latents (patch_size channels), 2 blocks,
    conditioned on seconds_start and seconds_total (0..max_seconds) only."""
    number = {"min_val": 0, "max_val": max_seconds}
    return {
        "model_type": "diffusion_cond",
        "sample_rate": sample_rate,
        "sample_size": sample_size,
        "audio_channels": 1,
        "model": {
            "pretransform": {
                "type": "patched",
                "config": {"channels": 1, "patch_size": patch_size},
            },
            "conditioning": {
                "configs": [
                    {"id": "seconds_start", "type": "number", "config": dict(number)},
                    {"id": "seconds_total", "type": "number", "config": dict(number)},
                ],
                "cond_dim": 32,
            },
            "diffusion": {
                "type": "dit",
                "cross_attention_cond_ids": ["seconds_start", "seconds_total"],
                "global_cond_ids": ["seconds_start", "seconds_total"],
                "diffusion_objective": "v",
                "config": {
                    "io_channels": patch_size,
                    "embed_dim": embed_dim,
                    "depth": 2,
                    "num_heads": num_heads,
                    "cond_token_dim": 32,
                    "global_cond_dim": 64,  # two number conditioners of cond_dim 32
                    "project_cond_tokens": False,
                    "transformer_type": "continuous_transformer",
                },
            },
            "io_channels": patch_size,
        },
    }
