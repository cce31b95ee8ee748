//! Renderings of a plan: the table as nft JSON (applied) and nft text (shown), and the plan as
//! a human report or JSON.

pub mod human;
pub mod json;
pub mod nft_json;
pub mod nft_text;
pub mod outcome;
