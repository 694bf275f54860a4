//! The lake (placeholder while the crate is built).
