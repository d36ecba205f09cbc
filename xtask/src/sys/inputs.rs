//! Reads, once, the files a plan is made from: the inventory (validated against what is on
//! disk) and every image's Dockerfile and .dockerignore files. Everything after works on the
//! values (model/sources.rs).

use std::path::Path;

use anyhow::Context;

use crate::dockerfile::Dockerfile;
use crate::model::inventory::{Inventory, PathKind};
use crate::model::sources::{own_ignore_file, ImageSources, Sources, Unread};

/// Reads and validates the inventory at `path`, with the files of its images.
pub fn load_inventory(path: &Path) -> anyhow::Result<Inventory> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("cannot read the inventory {}: pass an existing file with --inventory PATH", path.display())
    })?;
    parse_inventory(path, &text)
}

/// Validates inventory `text` as if read from `path`, and reads the files of its images.
pub fn parse_inventory(path: &Path, text: &str) -> anyhow::Result<Inventory> {
    let mut inventory = Inventory::parse_with(path, text, &on_disk)?;
    inventory.sources = read_sources(&inventory, text);
    Ok(inventory)
}

fn on_disk(path: &Path, kind: PathKind) -> bool {
    match kind {
        PathKind::File => path.is_file(),
        PathKind::Dir => path.is_dir(),
    }
}

/// The files of every image of `inventory` (`text` is the inventory's own). A Dockerfile that
/// cannot be read is kept as such: only what needs that image fails on it.
pub fn read_sources(inventory: &Inventory, text: &str) -> Sources {
    let mut sources = Sources { inventory: text.to_string(), ..Sources::default() };
    for image in inventory.images.values() {
        let files = match std::fs::read_to_string(&image.dockerfile) {
            Ok(dockerfile) => Ok(ImageSources {
                dockerfile: Dockerfile::parse(&dockerfile),
                text: dockerfile,
                own_ignore: std::fs::read_to_string(own_ignore_file(&image.dockerfile)).ok(),
                context_ignore: std::fs::read_to_string(image.context.join(".dockerignore")).ok(),
            }),
            Err(e) => Err(Unread { path: image.dockerfile.clone(), error: e.to_string() }),
        };
        sources.images.insert(image.name.clone(), files);
    }
    sources
}
