//! The warehouse (placeholder while the crate is built).

pub mod quality;
