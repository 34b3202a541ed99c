"""Write a file so readers see either nothing or all of it, even with workers racing."""

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def write_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a temporary sibling of ``target`` and move it into place.

    The sibling shares the target's filesystem, so ``os.replace`` is atomic; two processes doing
    the same work both succeed and the last rename wins with identical content.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
