"""Progress bars for commands: engine-style ``progress(stage, done, total)`` callbacks."""

from tqdm import tqdm


class StageProgressBars:
    """One tqdm bar per stage, written to ``stream`` (a command's stderr)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            bar = tqdm(total=total, desc=stage, file=self.stream, leave=True, dynamic_ncols=True)
            self.bars[stage] = bar
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
