//! Which images a change touches: the images a building command works on when given
//! --changed-since, and the inputs of each image that git is asked about (its Dockerfile, the
//! files its COPY/ADD take, the links among them, its .dockerignore files, the inventory, the
//! tool itself).

use std::path::{Path, PathBuf};

use anyhow::bail;

use super::common::{workspace_root, Ctx};
use crate::model::inventory::{Image, Inventory};
use crate::model::sources::own_ignore_file;
use crate::plan;
use crate::plan::changes::{self, Reason};
use crate::sys::git;

/// The images a building command works on: the named ones (all when none are named), or
/// those affected by changes since `changed_since`. `None` when the changes touch no image.
pub(super) fn chosen_images<'a>(
    ctx: &Ctx,
    inventory: &'a Inventory,
    names: &[String],
    changed: Option<&str>,
) -> anyhow::Result<Option<Vec<&'a Image>>> {
    let Some(reference) = changed else { return Ok(Some(plan::select(inventory, names)?)) };
    if !names.is_empty() {
        anyhow::bail!("--changed-since and image names do not go together: give one or the other");
    }
    let selection = changed_since(inventory, reference)?;
    if selection.is_empty() {
        ctx.log.note(&format!("no image is affected by the changes since {reference}"));
        return Ok(None);
    }
    for (name, reason) in &selection {
        ctx.log.note(&format!("{name}: {reason}"));
    }
    let names: Vec<String> = selection.into_iter().map(|(name, _)| name).collect();
    Ok(Some(plan::select(inventory, &names)?))
}

/// The images affected by changes since `reference` (since its merge base with HEAD), each
/// with the reason, from git and the Dockerfiles' COPY/ADD sources (see plan/changes.rs).
pub(super) fn changed_since(inventory: &Inventory, reference: &str) -> anyhow::Result<Vec<(String, Reason)>> {
    let (root, layout) = inputs_layout(inventory)?;
    let (base, changed) = git::changed_since(&root, reference)?;
    let how = inventory_change(inventory, &root, &layout, &base)?;
    Ok(changes::select(inventory, &layout, &changed, &how))
}

/// How the inventory changed since `revision`: which images' entries, or everything.
fn inventory_change(
    inventory: &Inventory,
    root: &Path,
    layout: &changes::Layout,
    revision: &str,
) -> anyhow::Result<changes::InventoryChange> {
    let before = git::file_at(root, revision, &layout.inventory);
    Ok(changes::inventory_change(before.as_deref(), &inventory.sources.inventory))
}

/// The images whose inputs differ between the commit `revision` and the working tree, each
/// with the reason: what a published image's revision label is compared by.
pub(super) fn changed_from_revision(
    inventory: &Inventory,
    revision: &str,
) -> anyhow::Result<Vec<(String, Reason)>> {
    let (root, layout) = inputs_layout(inventory)?;
    let mut contexts: Vec<PathBuf> = layout.images.iter().map(|i| i.context.clone()).collect();
    contexts.sort();
    contexts.dedup();
    let changed = git::changed_from(&root, revision, &contexts)?;
    let how = inventory_change(inventory, &root, &layout, revision)?;
    Ok(changes::select(inventory, &layout, &changed, &how))
}

/// What the symbolic links among `sources` lead to, inside `context`: Docker copies a linked
/// file's or folder's target (also where a link is a folder on the way, `conf/app.conf` with
/// `conf -> shared/conf`), so a change to the target is a change to the image. A wildcard
/// source is matched against the context's entries first (a few levels deep, as written).
fn link_targets(context: &Path, sources: &[String]) -> Vec<String> {
    let Ok(root) = context.canonicalize() else { return Vec::new() };
    let mut targets = Vec::new();
    let mut follow = |relative: &str| {
        let Some(inside) = resolve_within(&root, relative) else { return };
        if inside != relative.trim_start_matches("./").trim_end_matches('/') && !targets.contains(&inside) {
            targets.push(inside);
        }
    };
    for source in sources {
        if !source.contains(['*', '?', '[', '\\']) {
            follow(source);
            continue;
        }
        // Only as deep as the pattern reaches, and never into a linked folder.
        let depth = source.split('/').count();
        let mut stack = vec![(root.clone(), String::new(), 1)];
        while let Some((folder, prefix, level)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else { continue };
            for entry in entries.flatten().take(10_000) {
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                if changes::glob(source.trim_start_matches("./"), &name) {
                    follow(&name);
                }
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if is_dir && level < depth {
                    stack.push((entry.path(), format!("{name}/"), level + 1));
                }
            }
        }
    }
    targets
}

/// `relative` as Docker resolves it in a build context: every symbolic link on the way is
/// followed inside `root`, as if `root` were `/`, so a link to `../x` or to `/x` names the
/// context's own `x`. None for a loop of links.
fn resolve_within(root: &Path, relative: &str) -> Option<String> {
    let mut resolved: Vec<String> = Vec::new();
    let mut todo: std::collections::VecDeque<String> = relative.split('/').map(String::from).collect();
    let mut hops = 0;
    while let Some(part) = todo.pop_front() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let here = root.join(resolved.join("/")).join(&part);
        let is_link = std::fs::symlink_metadata(&here).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            resolved.push(part);
            continue;
        }
        hops += 1;
        if hops > 40 {
            return None;
        }
        let target = std::fs::read_link(&here).ok()?;
        let target = target.to_string_lossy();
        if target.starts_with('/') {
            resolved.clear();
        }
        let rest: Vec<String> = todo.drain(..).collect();
        todo.extend(target.split('/').map(String::from));
        todo.extend(rest);
    }
    Some(resolved.join("/"))
}

/// The repository root and where every image's inputs are, relative to it.
fn inputs_layout(inventory: &Inventory) -> anyhow::Result<(PathBuf, changes::Layout)> {
    let root = git::repository_root(inventory.folder())?;
    let root = root.canonicalize().unwrap_or(root);
    let relative = |path: &Path| -> PathBuf {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        path.strip_prefix(&root).map_or(path.clone(), Path::to_path_buf)
    };
    // The tool: this crate and the workspace files that decide how it builds.
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = workspace_root();
    let tool = [
        crate_dir.to_path_buf(),
        workspace.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
        workspace.join(".cargo"),
    ]
    .iter()
    .filter(|p| p.exists())
    .map(|p| relative(p))
    .filter(|p| p.is_relative())
    .collect();
    let patterns = |text: &Option<String>| text.as_deref().map(changes::dockerignore_patterns);
    let mut images = Vec::new();
    for image in inventory.images.values() {
        let files = match inventory.sources.images.get(&image.name) {
            Some(Ok(files)) => files,
            Some(Err(unread)) => bail!("cannot read {}: {}", unread.path.display(), unread.error),
            None => bail!("internal error: the Dockerfile of {} was not read", image.name),
        };
        let own_ignore = own_ignore_file(&image.dockerfile);
        let context_ignore = image.context.join(".dockerignore");
        let mut sources = files.dockerfile.context_sources(&image.build_args);
        sources.extend(link_targets(&image.context, &sources));
        images.push(changes::ImageInputs {
            name: image.name.clone(),
            files: vec![relative(&image.dockerfile), relative(&own_ignore), relative(&context_ignore)],
            context: relative(&image.context),
            sources,
            context_ignore: patterns(&files.context_ignore).unwrap_or_default(),
            dockerfile_ignore: patterns(&files.own_ignore),
        });
    }
    let layout = changes::Layout { inventory: relative(&inventory.path), tool, images };
    Ok((root, layout))
}
