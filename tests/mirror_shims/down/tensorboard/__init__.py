"""A tensorboard whose import fails, put first on a trainer's PYTHONPATH by
tests/test_mirror.py (the package is found, importing it raises)."""

raise ModuleNotFoundError("No module named 'tensorboard' (test shim)", name="tensorboard")
