"""Added to the copied Feast repo by scripts/bench-python.sh: the items'
feature view, for the ranking read (one user + 100 products)."""

from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Int64

product = Entity(name="product", join_keys=["product_id"], value_type=ValueType.STRING)

product_file = FileSource(name="product_file", path="data/product_features.parquet", timestamp_field="event_timestamp")

product_push = PushSource(name="product_push", batch_source=product_file)

product_features = FeatureView(
    name="product_features",
    entities=[product],
    ttl=timedelta(days=30),
    online=True,
    source=product_push,
    schema=[Field(name="popularity_7d", dtype=Int64)],
)
