"""A worker attempt's identity, the owner it writes into the lease columns.

The leases themselves (at most one live attempt per job, and per dataset being processed;
claim, renew, release, requeue, take over) are the domains' state machines:
app/jobs/lifecycle.py and app/datasets/lifecycle.py, their SQL in app/leasing.py.
"""

from __future__ import annotations

import os
import socket
import uuid


def new_owner() -> str:
    """Unique per attempt: host and pid say where it runs, the uuid tells attempts apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
