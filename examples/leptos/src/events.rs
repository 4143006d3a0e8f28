//! The events' payloads as Rust types, in the field names the edge's
//! feature spec reads (`features.toml`: `payload.productId`,
//! `payload.category`, `payload.price`).

use serde::Serialize;

use crate::catalog::Product;

/// `product_click`: counted by `clicks_product_card_7d` and
/// `popularity_7d`, listed by `recent_products`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductClick {
    pub product_id: &'static str,
    pub category: &'static str,
}

/// `add_to_cart`: summed by `cart_value_1h`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddToCart {
    pub product_id: &'static str,
    pub price: u32,
}

impl From<&Product> for ProductClick {
    fn from(p: &Product) -> Self {
        Self {
            product_id: p.id,
            category: p.category,
        }
    }
}

impl From<&Product> for AddToCart {
    fn from(p: &Product) -> Self {
        Self {
            product_id: p.id,
            price: p.price,
        }
    }
}
