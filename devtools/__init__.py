"""Development-only tools the tests and the benchmarks share; not in the wheel (pyproject's
packages.find names the runtime packages only): the PostgreSQL harness and the API client."""
