//! The files a plan is made from, as read once at the start (sys/inputs.rs): images.toml, and
//! each image's Dockerfile (parsed once) and .dockerignore files. model/ and plan/ read these
//! values, never the disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::dockerfile::Dockerfile;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sources {
    /// images.toml as read.
    pub inventory: String,
    /// Each image's files, or why its Dockerfile could not be read: that is an error only for
    /// what needs it (a `list` does not).
    pub images: BTreeMap<String, Result<ImageSources, Unread>>,
}

/// A Dockerfile that could not be read, and what the disk said.
#[derive(Debug, Clone, PartialEq)]
pub struct Unread {
    pub path: PathBuf,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageSources {
    pub text: String,
    pub dockerfile: Dockerfile,
    /// `Dockerfile-x.dockerignore` beside `Dockerfile-x`, which BuildKit prefers to the
    /// context's; None when there is none.
    pub own_ignore: Option<String>,
    /// The context's `.dockerignore`.
    pub context_ignore: Option<String>,
}

impl Sources {
    /// The files of inventory image `name`; a Dockerfile that could not be read is an error
    /// naming it and what the disk said.
    pub fn image(&self, name: &str) -> Result<&ImageSources, String> {
        match self.images.get(name) {
            Some(Ok(files)) => Ok(files),
            Some(Err(unread)) => Err(format!("{}: cannot read: {}", unread.path.display(), unread.error)),
            None => Err(format!("images.{name}: its Dockerfile was not read")),
        }
    }
}

/// `Dockerfile-x.dockerignore` beside `Dockerfile-x`.
pub fn own_ignore_file(dockerfile: &Path) -> PathBuf {
    let mut name = dockerfile.as_os_str().to_os_string();
    name.push(".dockerignore");
    PathBuf::from(name)
}
