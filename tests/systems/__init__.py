"""Systems added from the test tree, one folder each (``tests/systems/<system>/``, whose
``__init__`` declares ``SYSTEM``, a registry entry). ``tests/conftest.py`` registers every one of
them, so a system added here joins the shared suites with no other change."""
