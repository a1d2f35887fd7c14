"""pytest configuration seen by every test path (``testpaths`` in pyproject.toml).

The isolation all tests run under lives in one place, ``tests/support/isolation.py``
(``tests`` is on ``sys.path`` through the ``pythonpath`` setting).
"""

pytest_plugins = ["support.isolation"]
