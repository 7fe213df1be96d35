"""Hybrids: compositions of other models of the registry, fitted together and saved together.

- `WeightedHybrid`: per-user normalised score blend with tunable weights (`tune_weights`).
- `SwitchingHybrid`: cold users (few interactions) -> a cold-start member, warm -> a
  collaborative one; optionally cold items -> the cold-start member too.
- `MixedHybrid`: members' lists interleaved with per-source quotas, de-duplicated.

Members are named by registry name in the config ({name: params}); each is saved as a full
artifact in a `member-<j>/` subdirectory of the hybrid's artifact. `parse_members` and
`normalise` (the per-user score scales a blend uses) are public for blend selection.
"""

from serendip.models.hybrid._members import (
    NORMALISATIONS,
    MemberSpec,
    members_of,
    normalise,
    parse_members,
)
from serendip.models.hybrid._mixed import MixedHybrid, MixedHybridConfig, interleave
from serendip.models.hybrid._switching import SwitchingHybrid, SwitchingHybridConfig
from serendip.models.hybrid._weighted import (
    TUNED_BLEND,
    WeightedHybrid,
    WeightedHybridConfig,
    WeightTuning,
)

__all__ = [
    "NORMALISATIONS",
    "TUNED_BLEND",
    "MemberSpec",
    "MixedHybrid",
    "MixedHybridConfig",
    "SwitchingHybrid",
    "SwitchingHybridConfig",
    "WeightTuning",
    "WeightedHybrid",
    "WeightedHybridConfig",
    "interleave",
    "members_of",
    "normalise",
    "parse_members",
]
