"""The seeded sample world: a believable receivables history with known ground truth.

``generate_world(config, policy)`` builds the canonical tables (exactly
``dashboard.schema.CANONICAL_COLUMNS``) and the truth behind them; replaying the same config
under another ``CollectionsPolicy`` changes the world only through the policy's mechanism.
"""

from __future__ import annotations

from dashboard.synthetic.generator import World, generate_world
from dashboard.synthetic.model import (
    CHANNELS,
    SEGMENTS,
    TONES,
    CollectionsPolicy,
    TouchStep,
    WorldConfig,
    default_policy,
    no_touch_policy,
    policy_from_dict,
    pull_forward_days_mean,
    read_policy,
    response_probability,
)
from dashboard.synthetic.writer import SAMPLE_CONFIG, write_sample_data, write_world

__all__ = [
    "CHANNELS",
    "SAMPLE_CONFIG",
    "SEGMENTS",
    "TONES",
    "CollectionsPolicy",
    "TouchStep",
    "World",
    "WorldConfig",
    "default_policy",
    "generate_world",
    "no_touch_policy",
    "policy_from_dict",
    "pull_forward_days_mean",
    "read_policy",
    "response_probability",
    "write_sample_data",
    "write_world",
]
