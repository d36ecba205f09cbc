//! Whether this machine can run another platform's programs (a build's RUN steps): natively,
//! or through a QEMU emulator registered with the kernel's binfmt_misc, which docker, BuildKit
//! and podman all use.

use crate::model::platform::Platform;

/// The platform this machine runs natively.
pub fn host() -> Option<Platform> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => return None,
    };
    Platform::parse(&format!("{}/{arch}", std::env::consts::OS))
}

/// Why `platform` cannot run here, when it cannot: a foreign architecture without an enabled
/// `qemu-<arch>` entry in /proc/sys/fs/binfmt_misc.
pub fn missing(platform: &Platform) -> Option<String> {
    let host = host()?;
    if platform.os != host.os {
        return Some(format!("{platform} is another operating system than this machine's ({host})"));
    }
    if platform.arch == host.arch || (host.arch == "amd64" && platform.arch == "386") {
        return None;
    }
    let Some((qemu, _)) = platform.machine() else {
        return Some(format!("{platform}: no emulator is known for that architecture"));
    };
    let entry = std::path::Path::new("/proc/sys/fs/binfmt_misc").join(format!("qemu-{qemu}"));
    match std::fs::read_to_string(&entry) {
        Ok(text) if text.lines().next() == Some("enabled") => None,
        Ok(_) => Some(format!("{} is there but disabled", entry.display())),
        Err(_) => Some(format!("no QEMU emulator for {qemu} is registered ({} is missing)", entry.display())),
    }
}
