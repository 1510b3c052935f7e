"""Where things are in the repository, for the tests (they never read outside it)."""

from pathlib import Path

#: The tests' folder, the repository's root, this folder and the parity fixture's folder.
TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
SUPPORT = TESTS / "support"
FIXTURES = TESTS / "fixtures"
