"""The fault suite (a package, so its conftest does not shadow tests/python's)."""
