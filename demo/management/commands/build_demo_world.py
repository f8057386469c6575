"""``manage.py build_demo_world``: the embedded demo catalog and the model trained on it.

Renders real scores from music21's corpus to audio, writes the catalog files, and trains a
small stable-audio-tools DiT on them (CPU). Idempotent: a second run reuses what is built
when inputs and content hashes match. Output: ``DATA_DIR/demo/`` (docs/demo.md).
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Build (or reuse) the demo world: rendered catalog + trained text-to-music model."

    def add_arguments(self, parser) -> None:
        from demo.world import world

        parser.add_argument("--tracks", type=int, default=300, help="training tracks (default 300)")
        parser.add_argument("--heldout", type=int, default=96, help="held-out tracks (default 96)")
        parser.add_argument(
            "--seed", type=int, default=0, help="selection, rendering and training seed"
        )
        parser.add_argument(
            "--train-minutes",
            type=float,
            default=world.DEFAULT_TRAIN_MINUTES,
            help=(
                "training budget in minutes on the 2-core machine "
                f"(default {world.DEFAULT_TRAIN_MINUTES:g}); converted to a fixed step count "
                f"({world.STEPS_PER_MINUTE} steps/min) so that a seed fixes the result"
            ),
        )
        parser.add_argument(
            "--steps",
            type=int,
            default=None,
            help="exact training steps (overrides --train-minutes)",
        )
        parser.add_argument(
            "--out", type=Path, default=None, help="output folder (default DATA_DIR/demo)"
        )

    def handle(
        self,
        *args,
        tracks: int,
        heldout: int,
        seed: int,
        train_minutes: float,
        steps,
        out,
        **options,
    ) -> None:
        from tqdm import tqdm

        from demo.world import world
        from demo.world.training import TrainingDivergedError

        if tracks < 2:
            raise CommandError("--tracks must be at least 2")
        if heldout < 0:
            raise CommandError("--heldout cannot be negative")
        if steps is None:
            if train_minutes <= 0:
                raise CommandError("--train-minutes must be positive")
            steps = world.steps_for_minutes(train_minutes)
        if steps < 1:
            raise CommandError("--steps must be at least 1")
        root = Path(out) if out is not None else Path(settings.DATA_DIR) / "demo"
        cfg = world.WorldConfig(
            root=root, tracks=tracks, heldout=heldout, seed=seed, train_steps=steps
        )

        bars: dict[str, tqdm] = {}

        def on_catalog(stage: str, done: int, total: int) -> None:
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = tqdm(
                    total=total, desc=stage, unit="track", file=self.stderr._out
                )
            bar.n = done
            bar.refresh()

        def on_step(step: int, total: int, loss: float) -> None:
            bar = bars.get("train")
            if bar is None:
                bar = bars["train"] = tqdm(
                    total=total, desc="train", unit="step", file=self.stderr._out
                )
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

        def log(message: str) -> None:
            for bar in bars.values():
                bar.close()
            bars.clear()
            self.stdout.write(message)

        try:
            report = world.build_world(cfg, on_catalog=on_catalog, on_step=on_step, log=log)
        except TrainingDivergedError as exc:
            raise CommandError(str(exc)) from exc
        except (ValueError, FileNotFoundError) as exc:
            raise CommandError(f"demo world build failed: {exc}") from exc
        finally:
            for bar in bars.values():
                bar.close()
        for line in world.summary_lines(report.report):
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"demo world ready in {root}"))
