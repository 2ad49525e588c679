"""A ledger target that exists only in the test tree: the proof that adding a system is one
folder and one registry entry. Its connector (:mod:`.connector`) implements the LedgerTarget
port over HTTP against its own emulator (:mod:`.emulator`); its kit (:mod:`.kit`) hands the
shared ledger-target contract suite a factory."""
from connector_tasks.connectors.registry import SystemSpec
from connector_tasks.domain.ports import Role

SYSTEM = SystemSpec(name="fakeledger", title="Fake Ledger", roles=frozenset({Role.LEDGER_TARGET}),
                    contract="tests.systems.fakeledger.kit:ledger_contracts")
