"""kmock Kubernetes API emulator harness (fixtures for operator tests)."""
