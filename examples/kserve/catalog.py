"""The shop's catalog (examples/nuxt/app/utils/catalog.ts), read from the
shop's own source so the traffic, the model and the page agree on one list
of products without a copy to keep in step."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SHOP_CATALOG = Path(__file__).resolve().parents[1] / "nuxt" / "app" / "utils" / "catalog.ts"
PRODUCT = re.compile(r"\{\s*id:\s*'([^']+)',\s*name:\s*'([^']*)',\s*category:\s*'([^']+)',\s*price:\s*(\d+)")


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    category: str
    price: int


def load_catalog(path: Path = SHOP_CATALOG) -> list[Product]:
    products = [Product(m[1], m[2], m[3], int(m[4])) for m in PRODUCT.finditer(path.read_text(encoding="utf-8"))]
    if not products:
        raise ValueError(f"{path}: no products found (expected `{{ id: 'prod-1', name: …, category: …, price: … }}`)")
    return products
