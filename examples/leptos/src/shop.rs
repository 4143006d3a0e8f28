//! The product cards: a click on a card tracks `product_click`, "Add to
//! cart" tracks `add_to_cart`, each with its Rust payload.

use leptos::prelude::*;

use crate::catalog::{PRODUCTS, Product};
use crate::events::{AddToCart, ProductClick};
use crate::tracking::use_tracking;

#[component]
pub fn Shop() -> impl IntoView {
    let cart = RwSignal::new(0u32);
    view! {
        <p id="cart" data-total=move || cart.get().to_string()>"Cart: " {move || cart.get()}</p>
        <ul class="products">
            {PRODUCTS.iter().map(|p| view! { <ProductCard product=*p cart/> }).collect_view()}
        </ul>
    }
}

#[component]
fn ProductCard(product: Product, cart: RwSignal<u32>) -> impl IntoView {
    let tracking = use_tracking();
    let open = move |_| tracking.track("product_click", &ProductClick::from(&product));
    let add = move |_| {
        tracking.track("add_to_cart", &AddToCart::from(&product));
        cart.update(|total| *total += product.price);
    };
    view! {
        <li class="card" data-category=product.category>
            <button class="open" data-product=product.id on:click=open>
                <strong>{product.name}</strong>
                <span>{product.category}</span>
            </button>
            <span class="price">{product.price}</span>
            <button class="add" data-add=product.id on:click=add>"Add to cart"</button>
        </li>
    }
}
