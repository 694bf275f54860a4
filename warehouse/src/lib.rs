//! The warehouse (placeholder while the crate is built).
