"""A W&B service that is down, put first on a trainer's PYTHONPATH by tests/test_mirror.py:
importing works, every call raises."""


class Settings:
    def __init__(self, **_: object) -> None:
        pass


def init(*_: object, **__: object) -> None:
    raise ConnectionError("W&B is unreachable (test shim: every call raises)")
