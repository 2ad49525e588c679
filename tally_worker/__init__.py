"""The local agent beside TallyPrime.

A Celery worker bound to its own ``tally.<connection>`` queue with concurrency 1 and prefetch
1, forwarding to ``TALLY_URL`` (default ``http://127.0.0.1:9000``). It dials out only (to the
broker); TallyPrime's port is never exposed. It needs no database credentials: outcomes go
back through the broker.
"""
