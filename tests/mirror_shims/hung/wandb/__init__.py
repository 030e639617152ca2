"""A W&B stuck in a network outage, put first on a trainer's PYTHONPATH by
tests/test_mirror.py: `init` never returns, and like the real one it has registered an exit
hook that waits for its service (here: forever)."""

import atexit
import threading

_forever = threading.Event()


class Settings:
    def __init__(self, **_: object) -> None:
        pass


def init(*_: object, **__: object) -> None:
    atexit.register(_forever.wait)
    _forever.wait()
