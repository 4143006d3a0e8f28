//! Freshet's browser tracker. Filled in by the tracker issue; for now it
//! proves that `freshet-core`'s wire types build for the browser alone.

pub use freshet_core::wire::{WireBatch, WireEvent, is_valid_event_type};
