"""Hybrids: compositions of other models of the registry, fitted together and saved together.

- `WeightedHybrid`: per-user normalised score blend with tunable weights (`tune_weights`).
- `SwitchingHybrid`: cold users (few interactions) -> a cold-start member, warm -> a
  collaborative one; optionally cold items -> the cold-start member too.
- `MixedHybrid`: members' lists interleaved with per-source quotas, de-duplicated.

Members are named by registry name in the config ({name: params}); each is saved as a full
artifact in a `member-<j>/` subdirectory of the hybrid's artifact.
"""

from serendip.models.hybrid._members import MemberSpec
from serendip.models.hybrid._mixed import MixedHybrid, MixedHybridConfig, interleave
from serendip.models.hybrid._switching import SwitchingHybrid, SwitchingHybridConfig
from serendip.models.hybrid._weighted import WeightedHybrid, WeightedHybridConfig, WeightTuning

__all__ = [
    "MemberSpec",
    "MixedHybrid",
    "MixedHybridConfig",
    "SwitchingHybrid",
    "SwitchingHybridConfig",
    "WeightTuning",
    "WeightedHybrid",
    "WeightedHybridConfig",
    "interleave",
]
