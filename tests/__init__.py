"""Tests mirror the packages: tests/<service>/ for units, tests/integration/ for processes."""
