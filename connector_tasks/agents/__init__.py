"""The agent's trust boundary (docs/security.md, "Agents"): a broker user per agent confined to its
key prefix (:mod:`.acl`), per-command capabilities (:mod:`.capability`), commands into the
agent's lane (:mod:`.lanes`), reports through its outbox (:mod:`.outbox`, :mod:`.collector`),
enrolment and revocation (:mod:`.enrol`, :mod:`.cli`), the ``agent`` table (:mod:`.models`)."""
