"""Resident memory between the engine's large, short-lived allocations.

glibc keeps freed heap pages for reuse instead of handing them back, so after loading a
checkpoint (its random initialisation replaced by the stored weights) or encoding an item
through a VAE (activations over a whole window), a worker's resident memory would carry
gigabytes it no longer uses into the stage that needs the most (the Fisher's sums and a
gradient). `return_freed_memory` hands them back.
"""

from __future__ import annotations

import contextlib
import ctypes


def return_freed_memory() -> None:
    """Hand freed heap pages back to the system (``malloc_trim``; nothing elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)
