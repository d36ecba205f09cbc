//! What the tool knows about images, with no side effects: the inventory and its rules, tags,
//! OCI names, labels, the hardening rules, and the rules the workflows must follow.

pub mod filesystem;
pub mod hardening;
pub mod inventory;
pub mod labels;
pub mod listing;
pub mod oci;
pub mod packages;
pub mod platform;
pub mod rebuild;
pub mod sbom;
pub mod sources;
pub mod step;
pub mod support;
pub mod tags;
pub mod text;
pub mod workflows;
