//! The shop's products.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Product {
    pub id: &'static str,
    pub name: &'static str,
    pub category: &'static str,
    /// In whole currency units, as the edge's `cart_value_1h` sums them.
    pub price: u32,
}

pub const PRODUCTS: [Product; 4] = [
    Product {
        id: "lp-1",
        name: "Rangefinder camera",
        category: "cameras",
        price: 899,
    },
    Product {
        id: "lp-2",
        name: "35 mm lens",
        category: "lenses",
        price: 349,
    },
    Product {
        id: "lp-3",
        name: "Carbon tripod",
        category: "tripods",
        price: 189,
    },
    Product {
        id: "lp-4",
        name: "Camera strap",
        category: "accessories",
        price: 25,
    },
];
