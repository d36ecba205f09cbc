//! One module per command; each is `impl flags::Cmd { fn run(self, ctx) }`. What several
//! commands share (the context, choosing images, build settings, running or showing a plan) is
//! in common.rs.

mod build;
mod changes;
mod check;
mod ci;
mod cleanup;
mod common;
mod lint;
mod list;
mod login;
mod matrix;
mod packages;
mod publish;
mod sboms;
mod tags;
mod test;
mod verify;

pub use common::Ctx;
