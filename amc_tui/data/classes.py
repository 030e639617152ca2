"""The RadioML 2018.01A class and SNR tables.

The one-hot column order is the paper's, not the scrambled classes.txt shipped with the
download (radioML/dataset#25). Everything that maps names to indices goes through here.
"""

from __future__ import annotations

CLASSES: tuple[str, ...] = (
    "OOK", "4ASK", "8ASK", "BPSK", "QPSK", "8PSK", "16PSK", "32PSK", "16APSK", "32APSK",
    "64APSK", "128APSK", "16QAM", "32QAM", "64QAM", "128QAM", "256QAM", "AM-SSB-WC",
    "AM-SSB-SC", "AM-DSB-WC", "AM-DSB-SC", "FM", "GMSK", "OQPSK",
)  # fmt: skip
N_CLASSES = len(CLASSES)  # width of Y
ANALOG_AND_EXCLUDED = ("OOK", "AM-SSB-WC", "AM-SSB-SC", "AM-DSB-WC", "AM-DSB-SC", "FM", "GMSK")
DIGITAL: tuple[str, ...] = tuple(c for c in CLASSES if c not in ANALOG_AND_EXCLUDED)

SNR_MIN, SNR_MAX, SNR_STEP = -20, 30, 2
SNRS: tuple[int, ...] = tuple(range(SNR_MIN, SNR_MAX + 1, SNR_STEP))
FRAME_LEN = 1024
FRAMES_PER_CELL = 4096  # in the real file
DEFAULT_SPLIT: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, val, test shares

CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}
_UPPER = {name.upper(): name for name in CLASSES}


def canonical_class(name: str) -> str | None:
    """The table's spelling of a class name given in any case, or None."""
    return _UPPER.get(name.strip().upper())


def resolve_classes(spec: str | list[str]) -> list[str]:
    """Class names in one-hot order for a config's `classes` value.

    `"digital"` (17 classes), `"all"` (24) or a list of names; raises ValueError naming the
    unknown names and the valid ones.
    """
    if isinstance(spec, str):
        if spec == "digital":
            return list(DIGITAL)
        if spec == "all":
            return list(CLASSES)
        spec = [spec]
    names, unknown = [], []
    for raw in spec:
        name = canonical_class(raw)
        (unknown.append(raw) if name is None else names.append(name))
    if unknown:
        raise ValueError(
            f"unknown class name(s) {', '.join(repr(u) for u in unknown)}; valid: "
            f"'digital', 'all' or names from {', '.join(CLASSES)}"
        )
    if not names:
        raise ValueError("empty class list; give 'digital', 'all' or class names")
    if len(set(names)) != len(names):
        raise ValueError("duplicate class names in classes")
    return sorted(names, key=CLASS_INDEX.__getitem__)


def snr_range(snr_min: int, snr_max: int) -> list[int]:
    """The SNR levels (dB) selected by an inclusive range on the -20..30 step-2 grid."""
    return [s for s in SNRS if snr_min <= s <= snr_max]
