//! Reports: the schema (`model`), and its renderings for people (`human`) and machines (`json`).

pub mod human;
pub mod json;
mod model;
pub mod shown;

pub use model::*;
