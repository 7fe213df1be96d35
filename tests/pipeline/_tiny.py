"""A hand-built social platform where the right answer of every source is known.

Users: a (the viewer), b (followed, public), c (followed, private), d (followed by b only: a
friend of a friend), e (not followed; shares a's taste), z (unrelated).
Follows: a -> b, a -> c, b -> d.
Items (created_at in days before NOW; "+2" = two days after NOW):
  h1, h2  a's history (topic "garden")
  p1  authored by b, 30 days ago            b_new  authored by b, 2 days ago, no interactions
  p2  liked by b                            b_future authored by b, +2 (not yet published)
  p3  viewed by b                           c1  liked by c (private) only
  d1  liked by d                            e1  liked by e
  g_new  garden item nobody touched, created 1 day ago (content only)
"""

from __future__ import annotations

import pandas as pd

from serendip.data.dataset import Dataset

DAY = 86_400.0
NOW = 1_700_000_000.0


def tiny_platform(private_c: bool = True) -> Dataset:
    items = pd.DataFrame(
        [
            ("h1", "roses and tulips", "garden flowers roses", "garden", "z", 40),
            ("h2", "tomato seedlings", "garden vegetables tomato", "garden", "z", 39),
            ("p1", "city marathon", "running race", "sport", "b", 30),
            ("p2", "jazz night", "music saxophone", "music", "z", 25),
            ("p3", "chess opening", "board games chess", "games", "z", 20),
            ("c1", "secret recipe", "cooking pasta", "food", "z", 15),
            ("d1", "mountain hike", "travel alps", "travel", "z", 12),
            ("e1", "compost guide", "garden soil compost", "garden", "z", 10),
            ("b_new", "new bike", "cycling gear", "sport", "b", 2),
            ("b_future", "future post", "cycling race", "sport", "b", -2),
            ("g_new", "roses pruning", "garden roses flowers pruning", "garden", "z", 1),
        ],
        columns=["item", "title", "text", "category", "author", "age_days"],
    )
    items["created_at"] = NOW - items.pop("age_days") * DAY
    items["tags"] = items["category"]
    inter = [
        ("a", "h1", 5, "like"),
        ("a", "h2", 4, "like"),
        ("b", "p2", 3, "like"),
        ("b", "p3", 2, "view"),
        ("c", "c1", 3, "like"),
        ("d", "d1", 3, "like"),
        ("e", "h1", 6, "like"),
        ("e", "h2", 6, "like"),
        ("e", "e1", 1, "like"),
        ("z", "p3", 0, "like"),
        ("z", "d1", 0.5, "view"),
    ]
    interactions = pd.DataFrame(
        [(u, i, NOW - d * DAY, ev) for u, i, d, ev in inter],
        columns=["user", "item", "timestamp", "event"],
    )
    users = pd.DataFrame(
        {
            "user": ["a", "b", "c", "d", "e", "z"],
            "interests": ["garden", "sport", "food", "travel", "garden", ""],
            "private": [False, False, private_c, False, False, False],
        }
    )
    social = pd.DataFrame({"follower": ["a", "a", "b"], "followee": ["b", "c", "d"]})
    return Dataset.from_frames(interactions, items, users, social, name="tiny-known")
