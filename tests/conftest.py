pytest_plugins = [
    "tests.plugins.store",
    "tests.plugins.redis_server",
    "tests.plugins.app",
    "tests.plugins.faults",
    "tests.plugins.cli",
    "tests.plugins.graphql",
    "tests.plugins.logs",
    "tests.plugins.worker",
]
