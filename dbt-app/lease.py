"""Renews the workflow's pipeline lock while its run is alive (docs/fence-and-locks.md, "Leases").

A POST may carry `lease: {pk, sk, holder, seconds}`: the control-table lock item the calling
execution holds. While the run is QUEUED or RUNNING, the app pushes `leaseExpiresAt` forward on every
task heartbeat, conditioned on `executionArn = holder`, so the lease never expires under a live run,
and a crashed execution's lock frees `seconds` after its run ends. A failed condition (the lock was
released or taken over) is logged and changes nothing: the lease is the workflow's, the run is ours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

log = logging.getLogger("dbt-app.lease")

# The only attributes the app may touch on the control table (the IRSA policy holds it to these).
LEASE_ATTRIBUTES = ("pk", "sk", "executionArn", "leaseExpiresAt", "leaseRenewedAt")


class LeaseRenewer:
    def __init__(self, table: Any | None, clock: Callable[[], float]):
        """`table`: the control table (boto3 Table), or None when the app runs without one (local)."""
        self.table = table
        self.clock = clock

    def renew(self, run: dict[str, Any]) -> bool:
        """True when the lease was pushed forward; False when absent, not ours, or failed (logged)."""
        lease = run.get("lease")
        if not lease or self.table is None:
            return False
        now = self.clock()
        try:
            self.table.update_item(
                Key={"pk": lease["pk"], "sk": lease["sk"]},
                UpdateExpression="SET leaseExpiresAt = :exp, leaseRenewedAt = :now",
                ConditionExpression="executionArn = :holder",
                ExpressionAttributeValues={":exp": int(now + int(lease["seconds"])), ":now": int(now), ":holder": lease["holder"]},
            )
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                log.info("run %s: lock %s/%s is no longer held by its execution; not renewed", run.get("runId"), lease["pk"], lease["sk"])
            else:
                log.warning("run %s: lease renewal failed: %s", run.get("runId"), code)
            return False
