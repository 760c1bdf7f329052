"""How old the data is, and what an operator should do about it: one verdict for the window, ``status``
and ``kit-check``.

Rules:

- **ok** — younger than 1.5× the snapshot's expected export interval;
- **amber** — older than 1.5×; **red** — older than 3×, or past its expiry;
- **clock** — this computer's clock says a time before the snapshot was made (by more than
  ``CLOCK_SLACK``). The data is not "fresh" then: "on call now" is worked out from this clock and may
  show the wrong shift. It is never shown as fresh, wherever the age is shown.

Old data is never refused. The words assume what is most likely when updates stop: the servers or the
network are down (an outage is when this program is used), so they tell the operator how to keep
working — use the department line when a number fails — and ask for IT only if there is no outage.

This module must never import Qt and never read the clock itself: the caller hands in ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backup_operator.core.model import SnapshotMeta
from backup_operator.core.wording import CLOCK_SLACK, describe_age, interval_words, local_when

__all__ = ["AMBER", "CLOCK", "OK", "RED", "Freshness", "freshness"]

OK, AMBER, RED, CLOCK = "ok", "amber", "red", "clock"

IF_A_NUMBER_FAILS = "If a number fails or nobody answers, call the department line."
SHORT_ADVICE = "If a number fails, use the department line."


@dataclass(frozen=True)
class Freshness:
    level: str  # OK, AMBER, RED or CLOCK
    line: str  # "Data as of 06:00 today (3 h 12 min ago), version 1842"
    banner: str  # the whole explanation, for the window; empty when OK
    short: str  # one line that stays on screen once the operator has read the banner; empty when OK
    summary: str  # one sentence for the command line (no window shortcuts in it); empty when OK

    @property
    def fresh(self) -> bool:
        return self.level == OK


def freshness(meta: SnapshotMeta, version: int, now: datetime) -> Freshness:
    """The verdict on ``meta``'s age at ``now`` (an aware datetime from this computer's clock)."""
    created = meta.created_at
    if now < created - CLOCK_SLACK:
        made = local_when(created, now)
        line = f"Data as of {made} — later than this computer's clock ({local_when(now, now)}), version {version}"
        banner = (f"This computer's clock is behind: it says {local_when(now, now)}, but this data was made at "
                  f"{made}. \"On call now\" is worked out from this clock, so it may show the wrong shift. "
                  "Check the time on a phone or a wall clock and look up that time with Ctrl+T. "
                  "Ask IT to correct this computer's clock.")
        short = "CLOCK BEHIND: \"on call now\" may be wrong; check the time (Ctrl+T)."
        summary = (f"This computer's clock ({local_when(now, now)}) is behind the time this data was made "
                   f"({made}), so \"on call now\" may show the wrong shift; check the time and ask IT to "
                   "correct the clock.")
        return Freshness(CLOCK, line, banner, short, summary)
    age = describe_age(created, now)
    line = f"Data as of {local_when(created, now)} ({age}), version {version}"
    interval = max(60, int(meta.expected_interval_s or 0))
    every = interval_words(interval)
    expired = now >= meta.expires_at
    seconds = (now - created).total_seconds()
    if expired or seconds > 3 * interval:
        why = (f"; it passed its expiry at {local_when(meta.expires_at, now)}" if expired else "")
        banner = (f"OLD DATA: last updated {age} (updates normally come every {every}){why}. "
                  "This is expected while the servers or the network are down. Numbers and rotas may have "
                  f"changed since: {IF_A_NUMBER_FAILS} "
                  "If nothing is down, tell IT that updates have stopped reaching this desk.")
        short = f"OLD DATA, updated {age}. {SHORT_ADVICE}"
        summary = (f"OLD DATA: last updated {age} (updates normally come every {every}){why}; expected during "
                   f"an outage. {IF_A_NUMBER_FAILS}")
        return Freshness(RED, line, banner, short, summary)
    if seconds > 1.5 * interval:
        banner = (f"Data older than usual: last updated {age} (updates normally come every {every}). "
                  "This is expected while the servers or the network are down; keep working. "
                  f"{IF_A_NUMBER_FAILS}")
        short = f"Older than usual, updated {age}. {SHORT_ADVICE}"
        summary = (f"Data older than usual: last updated {age} (updates normally come every {every}); "
                   f"expected during an outage. {IF_A_NUMBER_FAILS}")
        return Freshness(AMBER, line, banner, short, summary)
    return Freshness(OK, line, "", "", "")
