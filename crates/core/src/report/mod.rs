//! Reports: the schema (`model`; `host` for the whole host), and its renderings for people (`human`) and machines (`json`,
//! `prometheus`).

mod host;
pub mod host_human;
pub mod human;
pub mod json;
mod model;
pub mod prometheus;

pub use host::*;
pub use model::*;
