"""Shared fixtures live in tests/support/; each module there is a pytest plugin."""

pytest_plugins = [
    "support.s3_server",
    "support.tiny_models",
    "support.kube",
    "support.tools",
    "support.openai_server",
    "support.faults",
    "support.grading",
    "support.control_plane",
]
