"""Test helpers shared by the unit and contract tests (not shipped in production modules)."""
