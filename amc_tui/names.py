"""Run names and ids: W&B-style `adjective-noun-N` names, 8-character base-36 ids, and the
check that keeps a user-given name or id from escaping the runs/ folder."""

from __future__ import annotations

import secrets
import string

ADJECTIVES = (
    "amber", "autumn", "bold", "brisk", "calm", "clever", "cosmic", "crimson", "dainty", "dark",
    "dawn", "deep", "desert", "devout", "dry", "dulcet", "eager", "earthy", "elegant", "ethereal",
    "fancy", "fiery", "floral", "fluent", "fresh", "frosty", "gentle", "giddy", "glad", "golden",
    "grateful", "hardy", "hearty", "helpful", "hidden", "honest", "icy", "jolly", "jumping",
    "keen", "kind", "lemon", "light", "lilac", "lively", "lucky", "lunar", "misty", "morning",
    "noble", "northern", "olive", "pious", "polar", "proud", "quiet", "rare", "restful", "rich",
    "rosy", "royal", "rural", "sage", "sandy", "scarlet", "serene", "sharp", "silent", "silver",
    "smart", "snowy", "solar", "spring", "stellar", "still", "stoic", "summer", "sunny", "swift",
    "tender", "twilight", "upbeat", "vague", "vibrant", "vital", "warm", "wandering", "wild",
    "winter", "wise", "woven", "young", "zesty",
)  # fmt: skip
NOUNS = (
    "bird", "blaze", "breeze", "brook", "bush", "butterfly", "cherry", "cloud", "comet", "darkness",
    "dawn", "dew", "dream", "dust", "feather", "field", "fire", "firefly", "flower", "fog",
    "forest", "frog", "frost", "galaxy", "glade", "glitter", "grass", "haze", "hill", "lake",
    "leaf", "meadow", "moon", "morning", "mountain", "night", "paper", "pine", "planet", "pond",
    "rain", "resonance", "river", "sea", "shadow", "shape", "silence", "sky", "smoke", "snow",
    "snowflake", "sound", "star", "sun", "sunset", "surf", "thunder", "tree", "valley", "violet",
    "voice", "water", "wave", "wildflower", "wind", "wood",
)  # fmt: skip

_B36 = string.digits + string.ascii_lowercase
MAX_NAME_LEN = 64


def new_id() -> str:
    """8 random base-36 characters (36^8 ~ 2.8e12: collisions are not a concern)."""
    return "".join(secrets.choice(_B36) for _ in range(8))


def new_name(counter: int) -> str:
    """`adjective-noun-N` with N the workspace's run counter."""
    return f"{secrets.choice(ADJECTIVES)}-{secrets.choice(NOUNS)}-{counter}"


def check_name(name: str) -> str:
    """Return `name` if it is safe as a folder name under runs/, else raise ValueError."""
    if not name:
        raise ValueError("a run name cannot be empty")
    if len(name) > MAX_NAME_LEN:
        raise ValueError(f"run name is {len(name)} characters; at most {MAX_NAME_LEN}")
    if "/" in name or "\\" in name:
        raise ValueError(f"run name {name!r} contains a path separator")
    if name in (".", "..") or ".." in name:
        raise ValueError(f"run name {name!r} contains '..'")
    if name.startswith((".", "-")):
        raise ValueError(f"run name {name!r} may not start with '.' or '-'")
    if not name.isprintable() or any(c.isspace() and c != " " for c in name):
        raise ValueError(f"run name {name!r} contains control characters")
    return name
