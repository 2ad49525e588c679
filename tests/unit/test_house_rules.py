"""Rules of the house that keep it one house for every system (docs/architecture.md).

* Vendor names live only in ``connectors/<system>/``, ``sandbox/<system>/`` (and the folders a
  registry entry declares, e.g. the agent's package) and the registry: flows, the job machinery,
  the pipeline, the store, the web app, the CLI and the demo speak the domain and read the
  registry.
* Only ``jobs/states.transition`` writes a job's status and lease.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from connector_tasks.connectors import registry

ROOT = Path(__file__).resolve().parents[2]
#: production source checked (tests and benchmarks are about vendors by nature)
CHECKED = ("config", "connector_tasks", "webapp", "sandbox", "tally_worker")
#: vendors whose folders exist before (or beside) their registry entry
PLANNED = {"servicetitan": ("servicetitan", "service titan"), "ifs_cloud": ("ifs", "ifs cloud"),
           "whatsapp": ("whatsapp", "wa.expert")}


def _vendors() -> dict[str, tuple[str, ...]]:
    names = {s.name: (s.name, s.title.lower(), *s.aliases) for s in registry.BUILTIN}
    for name, words in PLANNED.items():
        names.setdefault(name, (name, *words))
    return names


def _allowed_folders(system: str) -> list[Path]:
    spec = registry.find(system)
    extra = spec.folders if spec else ()
    return [ROOT / "connector_tasks" / "connectors" / system, ROOT / "sandbox" / system,
            *(ROOT / f for f in extra)]


def _python_files():
    for top in CHECKED:
        yield from (ROOT / top).rglob("*.py")


def test_vendor_names_appear_only_in_their_own_folders_and_the_registry():
    registry_file = ROOT / "connector_tasks" / "connectors" / "registry.py"
    offences = []
    for system, words in _vendors().items():
        pattern = re.compile("|".join(rf"(?<![a-z]){re.escape(w)}(?![a-z])" for w in set(words)), re.I)
        allowed = _allowed_folders(system)
        for path in _python_files():
            if path == registry_file or any(folder in path.parents for folder in allowed):
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offences.append(f"{path.relative_to(ROOT)}:{number} names {system}: {line.strip()[:90]}")
    assert not offences, "vendor names outside their folders:\n" + "\n".join(offences)


def test_the_rule_would_catch_a_vendor_name():
    """The check above is not vacuous: it finds a name in a line where one is."""
    pattern = re.compile(r"(?<![a-z])tally(?![a-z])", re.I)
    assert pattern.search("post it to Tally's day book") and pattern.search("tally_worker")
    assert not pattern.search("totally fine")


def _writes(tree: ast.AST):
    """``(line, attribute, object)`` of every assignment to an attribute."""
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(t, ast.Attribute):
                    yield node.lineno, t.attr, ast.unparse(t.value)


def test_only_the_state_machine_writes_a_job_status_or_lease():
    states = ROOT / "connector_tasks" / "jobs" / "states.py"
    offences = []
    for path in _python_files():
        if path == states:
            continue
        for line, attr, obj in _writes(ast.parse(path.read_text())):
            # an event's status (the inbound path's) and a connection's are not a job's
            if attr == "lease_until" or (attr == "status" and obj not in ("event", "e", "conn", "self")):
                offences.append(f"{path.relative_to(ROOT)}:{line} writes {obj}.{attr}")
    assert not offences, "status/lease written outside jobs/states.transition:\n" + "\n".join(offences)


#: a citation of the reference notes kept outside the repository (``shared/reference``)
OUTSIDE_CITATION = re.compile(r"external-apis|shared/reference", re.I)


def _cited_files():
    for top in (*CHECKED, "tests", "bench"):
        yield from (ROOT / top).rglob("*.py")
        yield from (ROOT / top).rglob("*.md")


def test_sources_are_cited_by_the_vendors_own_documents_not_a_file_outside_the_repository():
    """Docstrings and connector READMEs cite the vendor's documentation (URL and section), never
    the notes in ``shared/reference`` that a user of the repository does not have."""
    this = Path(__file__).resolve()
    offences = [f"{path.relative_to(ROOT)}:{number}: {line.strip()[:90]}"
                for path in _cited_files() if path.resolve() != this
                for number, line in enumerate(path.read_text().splitlines(), 1)
                if OUTSIDE_CITATION.search(line)]
    assert not offences, "citations of a file outside the repository:\n" + "\n".join(offences)


def test_the_citation_rule_would_catch_one():
    assert OUTSIDE_CITATION.search("(external-apis.md §2.2)")
    assert OUTSIDE_CITATION.search("``../shared/reference/external-apis.md``")
    assert not OUTSIDE_CITATION.search("(https://help.tallysolutions.com/xml-integration/)")
