"""The fault suite: every test here is a row (or a case of a row) of docs/reliability.md.

Conventions (the bookkeeping lives in tests/support/faults.py, a plugin loaded by tests/conftest.py):
- decorate each test `@pytest.mark.fault("<row: the fault or input class>", outcome="recovered" |
  "refused" | "failed cleanly")`; parametrized cases count as cases of that row;
- report anything lost through the `fault_losses` fixture (must be 0);
- mark tests that take more than a few seconds `@pytest.mark.faults_long`: `make test` skips them,
  `make test-faults` runs everything and regenerates docs/reliability.md.
"""
