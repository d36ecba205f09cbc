//! The outside world: child processes under time limits and signals, the container CLI (the
//! only place it runs), the registry's HTTP API, git, GitHub's API and Actions output, the
//! environment, retries.

pub mod docker;
pub mod emulation;
pub mod env;
pub mod export;
pub mod gha;
pub mod git;
pub mod github;
pub mod inputs;
pub mod interrupt;
pub mod output;
pub mod process;
pub mod random;
pub mod registry;
pub mod retry;
pub mod rpm;
pub mod timing;
