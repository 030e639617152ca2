"""Makes `wandb` and `tensorboard` look uninstalled to the process that has this folder on
its PYTHONPATH (tests/test_mirror.py: `config check` must refuse a mirror without its
package): a meta-path finder, run before all others, that refuses them."""

import sys

HIDDEN = {"wandb", "tensorboard"}


class Uninstalled:
    @staticmethod
    def find_spec(name, path=None, target=None):  # noqa: ANN001, ANN205
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Uninstalled())
