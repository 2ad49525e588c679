"""The inbound pipeline every source shares: events in (:mod:`.inbound`), the outbox relay
(:mod:`.relay`), routing to jobs (:mod:`.routing`) and the pipeline's tasks (:mod:`.tasks`)."""
