"""Unit tests (a package, so basenames may repeat those in tests/contract/)."""
