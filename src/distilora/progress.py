"""One progress bar for every long pass (training steps, evaluation, teacher scoring, file prediction).

tqdm shows the rate and the ETA; off a terminal (logs, CI) it redraws at most every 30 s so logs stay short.
"""
from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int, *, desc: str | None, unit: str, enabled: bool = True, initial: int = 0) -> Any:
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit=unit, dynamic_ncols=True,
                mininterval=0.5 if interactive else 30.0)
