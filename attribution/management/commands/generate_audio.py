"""``manage.py generate_audio "prompt" --seconds 4 --seed 1 --out out.wav``.

Generates audio with a stable-audio-tools checkpoint (default: the demo model in
``DATA_DIR/demo/model``) and writes a 16-bit PCM WAV.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Generate audio from a text prompt with a stable-audio-tools checkpoint."

    def add_arguments(self, parser) -> None:
        parser.add_argument("prompt")
        parser.add_argument("--seconds", type=float, default=4.0, help="duration (default 4)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--steps", type=int, default=None, help="denoising steps (default: the model's)"
        )
        parser.add_argument(
            "--cfg-scale", type=float, default=None, help="guidance scale (default: the model's)"
        )
        parser.add_argument("--out", type=Path, default=Path("out.wav"))
        parser.add_argument(
            "--checkpoint", type=Path, default=None, help="default DATA_DIR/demo/model"
        )
        parser.add_argument("--device", default="cpu")

    def handle(
        self, *args, prompt, seconds, seed, steps, cfg_scale, out, checkpoint, device, **options
    ) -> None:
        import soundfile as sf

        from attribution.engine.errors import EngineError
        from attribution.engine.loading import CheckpointError, load_model
        from attribution.engine.sampling import generate
        from attribution.services import text_encoder_dirs

        checkpoint = checkpoint or Path(settings.DATA_DIR) / "demo" / "model"
        try:
            model, config = load_model(
                checkpoint,
                device=device,
                text_encoder_dirs=text_encoder_dirs(),
            )
            audio, sample_rate = generate(
                model, config, prompt, seconds, seed, steps, cfg_scale=cfg_scale, device=device
            )  # (C, T)
        except EngineError as exc:  # e.g. a text encoder that is not on this machine
            raise CommandError(str(exc)) from exc
        except CheckpointError as exc:
            raise CommandError(
                f"{exc} (build the demo model with: manage.py build_demo_world)"
            ) from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        out.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(out), audio.T.numpy(), sample_rate, subtype="PCM_16")
        self.stdout.write(
            f"wrote {out} ({audio.shape[-1] / sample_rate:.2f} s, {sample_rate} Hz, seed {seed})"
        )
