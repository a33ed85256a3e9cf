"""What a long-running coordinator process built at start is set aside from the garbage collector.

A full (generation 2) collection walks every tracked object of the process while it holds
the GIL, and the objects a coordinator makes at start (modules, FastAPI's routes and
models, SQLAlchemy's mappers, pydantic's schemas) never become garbage. Under load a full
collection of an HTTP process stalled every request it had in hand for 80 to 200 ms on
the 2-core machine (docs/decisions.md). ``gc.freeze`` moves them to a permanent
generation that collections skip; what requests allocate is collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect what start-up left over, then freeze the rest; the number of objects now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
