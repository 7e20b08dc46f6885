"""Admission: consent applied to a call as it comes in (its window moved into calling hours,
its number checked against the do-not-call list and counted against its cap), and the
do-not-call list itself (PUT /suppressions and the callee's own opt-out)."""
