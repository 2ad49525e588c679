"""The job machinery every flow shares.

* :mod:`.states`: the statuses of events and jobs and the one function that moves a job
  (the only writer of its status and lease);
* :mod:`.runner`: the one runner of steps (cloud and agent), the typed :class:`Outcome` of a
  target step, the hand-off to a target;
* :mod:`.results`: recording an outcome (in-process, or from an agent's checked outbox report);
* :mod:`.sweeper`: nothing lost (``connector.sweep``);
* :mod:`.replay`: operator operations (list, replay).
"""
