"""Progress display for long protocol runs: cells done, pulses spent, estimated time left (tqdm)."""
from __future__ import annotations

import sys

from tqdm.auto import tqdm


class Progress:
    """A tqdm bar counted in cells, with the pulses spent shown alongside; a no-op when disabled."""

    def __init__(self, total_cells: int, desc: str, enabled: bool = True, initial: int = 0, unit: str = "cell"):
        self.pulses = 0
        self.reads = 0
        self.done = int(initial)  # cells shown as finished
        self.total = int(total_cells)
        self._bar = tqdm(total=int(total_cells), initial=int(initial), desc=desc, unit=unit,
                         disable=not enabled, file=sys.stderr, dynamic_ncols=True, leave=True)

    def reset(self, total_cells: int, initial: int = 0) -> None:
        """Start over with a new total (e.g. once a resumed run knows what is left)."""
        self._bar.reset(total=int(total_cells))
        self.total, self.done = int(total_cells), int(initial)
        self._bar.update(int(initial))

    def update(self, cells: int = 0, pulses: int = 0, reads: int = 0) -> None:
        self.pulses += int(pulses)
        self.reads += int(reads)
        self.done += int(cells)
        self._bar.set_postfix(pulses=self.pulses, reads=self.reads, refresh=False)
        self._bar.update(int(cells))

    def set_done(self, cells: int) -> None:
        """Show ``cells`` as the number finished: it can fall, when a verify pass re-opens cells, and never
        counts a cell twice."""
        self.update(cells=int(cells) - self.done)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
