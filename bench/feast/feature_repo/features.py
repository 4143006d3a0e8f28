"""The five user features that scripts/bench-feast.sh reads from both sides,
declared the Feast way: an entity, a push source (its batch source is an
empty, typed parquet file that prepare.py writes) and a feature view on it.

Feast stores what is pushed; it does not aggregate. The counts and the last
values are computed by whoever pushes (here the load client), which is the
work Freshet's ingest does itself from the raw events (features.toml).
"""

from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Int64, String

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)

user_events_file = FileSource(
    name="user_events_file",
    path="data/user_features.parquet",
    timestamp_field="event_timestamp",
)

user_push = PushSource(name="user_push", batch_source=user_events_file)

user_features = FeatureView(
    name="user_features",
    entities=[user],
    ttl=timedelta(days=30),
    online=True,
    source=user_push,
    schema=[
        Field(name="pageviews", dtype=Int64),
        Field(name="clicks_product_card", dtype=Int64),
        Field(name="searches", dtype=Int64),
        Field(name="last_interacted_product", dtype=String),
        Field(name="last_event_at", dtype=Int64),
    ],
)
