"""Stand-ins the examples, the benchmarks and the tests share; not part of the installed package.

``devkit.pgserver`` starts a throwaway PostgreSQL server; ``devkit.fake_model``
is an agno model that answers from a script with no network and no API key.
Neither imports pytest. They run from a checkout, with the repository root
on ``sys.path`` (the examples put it there; ``python -m bench`` and pytest
run from the root).
"""
