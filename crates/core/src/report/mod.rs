//! Reports: the schema (`model`; `host` for the whole host), and its renderings for people
//! (`human`, `host_human`) and machines (`json`, `prometheus`).

pub mod fleet_human;
pub mod fleet_json;
mod host;
pub mod host_human;
pub mod html;
pub mod human;
pub mod json;
mod model;
pub mod prometheus;
pub mod prometheus_set;
pub mod shown;

pub use host::*;
pub use model::*;
