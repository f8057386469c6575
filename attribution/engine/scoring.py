"""Attribution scores: the output of every attribution method (see pipeline.py).

For the unlearning method (Eq. 2), tau_i = L(z_i, theta') - L(z_i, theta0), theta' from Eq. 6:
a larger tau_i means unlearning the query raised training item i's loss more, i.e. item i is
more attributable to the query.
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attribution.engine.artifacts import array_sha256, atomic_write_bytes


def rank_of(tau: np.ndarray, position: int) -> int:
    """R(z) of Sec. 3.2: 1 + the number of other items scored at least as high as `position`
    in tau (N,) (ties count against the item)."""
    others = np.delete(tau, position)
    return 1 + int((others >= tau[position]).sum())


@dataclass(eq=False)
class Scores:
    """tau (N,) for one query over the training set, with everything that reproduces it."""

    query_id: str
    item_ids: list[str]
    tau: np.ndarray  # (N,) float64
    # Per-item arrays (N,) the method keeps beside tau (unlearning: the two losses of Eq. 2).
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def base_losses(self) -> np.ndarray:
        """L(z_i, theta0) (unlearning method)."""
        return self.columns["base_losses"]

    @property
    def unlearned_losses(self) -> np.ndarray:
        """L(z_i, theta') (unlearning method)."""
        return self.columns["unlearned_losses"]

    def ranking(self) -> np.ndarray:
        """Training positions from most to least attributable (stable for ties)."""
        return np.argsort(-self.tau, kind="stable")

    def rank_of(self, position: int) -> int:
        """R(z) of Sec. 3.2 for training position `position` (`rank_of`)."""
        return rank_of(self.tau, position)

    def tau_sha256(self) -> str:
        return array_sha256(self.tau)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query_id": self.query_id,
            "item_ids": self.item_ids,
            "tau": [float(x) for x in self.tau],
            "tau_hex": [float(x).hex() for x in self.tau],  # exact float64 values
            "tau_sha256": self.tau_sha256(),
            **{name: [float(x) for x in column] for name, column in self.columns.items()},
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(self.to_dict(), indent=1, sort_keys=True).encode())
        return path


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("torch", "numpy", "stable-audio-tools", "scipy", "scikit-learn"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "absent"
    return versions
