//! Reading an image's RPM database. The database is rpm's own format (Berkeley DB on RHEL 8,
//! SQLite after), so rpm reads it: this machine's rpm against the database exported from the
//! image (nothing of the image runs), or, when this machine has no rpm, the image's own rpm
//! (`docker run`, no network), which is said.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::model::packages::{rpm, Package, RPM_DATABASES};
use crate::sys::docker::Docker;
use crate::sys::process::{self, Io};

/// The packages in the RPM database among `files` (exported from `reference`), and how they
/// were read; None when the image has no RPM database.
pub fn read(
    files: &[(String, Vec<u8>)],
    docker: &Docker,
    reference: &str,
) -> anyhow::Result<Option<(Vec<Package>, String)>> {
    let Some((database, bytes)) = files.iter().find(|(p, _)| RPM_DATABASES.contains(&p.as_str())) else {
        return Ok(None);
    };
    if process::on_path("rpm") {
        let packages = with_host_rpm(database, bytes)?;
        return Ok(Some((
            packages,
            format!("{database} read by this machine's rpm from the exported files"),
        )));
    }
    let args = [
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "0",
        "--entrypoint",
        "rpm",
        reference,
        "-qa",
        "--qf",
        rpm::QUERY_FORMAT,
    ];
    let out = docker.capture(&args)?;
    if !out.success {
        // `docker run` ends with "Run 'docker run --help'..."; the cause is the line before.
        let cause = out.stderr.lines().find(|l| l.contains("rror")).unwrap_or_else(|| out.error_line());
        bail!("{database}: this machine has no rpm, and the image's own rpm failed: {}", cause.trim());
    }
    let packages = rpm::parse(database, &out.stdout)?;
    Ok(Some((
        packages,
        format!("{database} read by the image's own rpm (`docker run`): this machine has no rpm program (install rpm to read it without running the image)"),
    )))
}

fn with_host_rpm(database: &str, bytes: &[u8]) -> anyhow::Result<Vec<Package>> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "xtask-rpmdb-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    let _gone = Removed(dir.clone());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = Path::new(database).file_name().map(PathBuf::from).unwrap_or_else(|| "Packages".into());
    std::fs::write(dir.join(&file), bytes)?;
    let mut args = vec!["--dbpath".to_string(), dir.to_string_lossy().into_owned()];
    // RHEL 8's Berkeley DB can only be read (rpm 4.16 and later dropped writing it).
    if file.as_os_str() == "Packages" {
        args.extend(["--define".to_string(), "_db_backend bdb_ro".to_string()]);
    }
    args.extend(["-qa".to_string(), "--qf".to_string(), rpm::QUERY_FORMAT.to_string()]);
    let out = process::run("rpm", &args, Io::Capture(None), Duration::from_secs(120), "Install rpm")?;
    if !out.success || out.stderr.lines().any(|l| l.starts_with("error:")) {
        bail!("{database}: rpm could not read the database: {}", out.error_line());
    }
    let packages = rpm::parse(database, &out.stdout)?;
    if packages.is_empty() {
        bail!("{database}: rpm found no package in it: the database is damaged or in a format this rpm cannot read");
    }
    Ok(packages)
}

struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
