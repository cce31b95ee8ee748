//! Reports: the schema (`model`), and its renderings for people (`human`) and machines (`json`,
//! `prometheus`).

pub mod fleet_human;
pub mod fleet_json;
pub mod html;
pub mod human;
pub mod json;
mod model;
pub mod prometheus;
pub mod shown;

pub use model::*;
