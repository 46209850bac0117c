"""Retry plans: which declines may be retried, where and when.

A hard decline (the card or the payment is bad: over a hard limit, blocked, suspected fraud,
no gateway may legally carry it) is never retried: the plan is ``"none"``. A soft decline (the
card hit the velocity cap) may be retried once the hour has passed, on the best gateway. An
approval whose chosen gateway is predicted to fail too often carries a failover plan to the
next-best gateway. Plans read ``"<GATEWAY>@+<delay>"``.
"""

from __future__ import annotations

from typing import Final

import numpy as np

HARD_RULES: Final = frozenset({"amount_limit", "blocked_country", "blocked_bin", "no_route",
                               "score_decline"})
SOFT_RULES: Final = frozenset({"velocity_cap_1h"})
#: A soft decline waits out the velocity window before it is retried.
SOFT_DELAY: Final = "+60m"
#: An approval routed to a gateway below this predicted success gets a failover plan.
FAILOVER_BELOW_P: Final = 0.9
FAILOVER_DELAY: Final = "+30m"


def retry_plans(decision: np.ndarray, rule: np.ndarray, route: np.ndarray, alt_route: np.ndarray,
                p_success: np.ndarray) -> np.ndarray:
    """Per row: "none" (hard decline), "<gw>@+<delay>" (soft decline, failover) or None."""
    n = len(decision)
    plan = np.full(n, None, dtype=object)
    declined = decision == "decline"
    plan[declined] = "none"
    soft = declined & np.isin(rule, list(SOFT_RULES)) & (route != None)  # noqa: E711
    plan[soft] = route[soft].astype(str) + "@" + SOFT_DELAY
    weak = ((decision == "approve") & (alt_route != None)  # noqa: E711
            & (np.nan_to_num(p_success, nan=1.0) < FAILOVER_BELOW_P))
    plan[weak] = alt_route[weak].astype(str) + "@" + FAILOVER_DELAY
    return plan


def retry_plan_one(decision: str, rule: str, route: str | None, alt_route: str | None,
                   p_success: float) -> str | None:
    """The scalar twin of ``retry_plans``."""
    if decision == "decline":
        if rule in SOFT_RULES and route is not None:
            return f"{route}@{SOFT_DELAY}"
        return "none"
    p = 1.0 if p_success != p_success else p_success  # NaN (no route) never fails over
    if decision == "approve" and alt_route is not None and p < FAILOVER_BELOW_P:
        return f"{alt_route}@{FAILOVER_DELAY}"
    return None
