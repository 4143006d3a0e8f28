"""What a read returns: rows of served values, and the shapes models want
(columns like Feast's ``OnlineResponse.to_dict()``, a float matrix, a
DataFrame). Nothing here computes a value; the rows come decoded from core."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from freshet._freshet import FeatureValue

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Row = dict[str, FeatureValue]


class OnlineResponse(Sequence[Row]):
    """The features of some entities of one kind, one row per id, in order.

    ``res[i]`` is a dict from feature name (as asked) to :class:`FeatureValue`
    (``.value``, ``.stale``, ``.updated_at``).
    """

    __slots__ = ("columns", "entity", "ids", "rows")

    def __init__(self, entity: str, ids: list[str], columns: list[str], rows: list[Row]) -> None:
        self.entity = entity
        self.ids = ids
        self.columns = columns
        self.rows = rows

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        return self.rows[index]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"OnlineResponse(entity={self.entity!r}, ids={len(self.ids)}, columns={self.columns!r})"

    def to_dict(self) -> dict[str, list[Any]]:
        """Columns: the entity's ids under the entity's name, then each
        feature's values: ``{"user": ["cid-1"], "pageviews": [3]}``."""
        out: dict[str, list[Any]] = {self.entity: list(self.ids)}
        for column in self.columns:
            out[column] = [row[column].value for row in self.rows]
        return out

    def to_numpy(self, features: Sequence[str] | None = None) -> np.ndarray:
        """A float64 matrix, one row per id, one column per feature (all the
        response's columns when ``features`` is None). Defaults are already
        filled by the read; a ``null`` value is NaN, a bool is 0.0 or 1.0.
        A list or string value has no float: it raises ``TypeError`` naming
        the feature (encode it yourself from ``to_dict()``)."""
        import numpy as np

        names = list(self.columns if features is None else features)
        for name in names:
            if name not in self.columns:
                raise KeyError(f"{name!r} was not read; the response has {self.columns}")
        matrix = np.empty((len(self.rows), len(names)), dtype=np.float64)
        for i, row in enumerate(self.rows):
            for j, name in enumerate(names):
                matrix[i, j] = _as_float(name, row[name].value)
        return matrix

    def to_pandas(self) -> pd.DataFrame:
        """The columns of :meth:`to_dict` as a DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - pandas is optional
            raise ImportError("to_pandas() needs pandas: pip install pandas") from e
        return pd.DataFrame(self.to_dict())


class RankingResponse:
    """One user, many items and each (user, item) pair, read in one round
    trip. ``pairs[i]`` is the pair of ``user`` and ``items[i]`` (its id the
    composite id, ``freshet.composite_id``); ``pairs`` is ``None`` when the
    read asked for no pair features."""

    __slots__ = ("items", "pairs", "user")

    def __init__(self, user: OnlineResponse, items: OnlineResponse, pairs: OnlineResponse | None = None) -> None:
        self.user = user
        self.items = items
        self.pairs = pairs

    def __repr__(self) -> str:
        return f"RankingResponse(user={self.user!r}, items={self.items!r}, pairs={self.pairs!r})"


def _as_float(name: str, value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, (bool, int, float)):
        return float(value)
    raise TypeError(
        f"feature {name!r} is a {type(value).__name__}, not a number; "
        "to_numpy() takes number features only (use to_dict() for the rest)"
    )
