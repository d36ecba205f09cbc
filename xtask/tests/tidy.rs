//! Keeps the source tree honest about its own rules (../docs: "Layering"): model/ and plan/
//! are pure and import neither sys/ nor run/; sys/ imports neither plan/ nor run/; and no
//! production file or function grows past the size a reader can hold. Only the part of a file
//! before its `#[cfg(test)]` module counts: tests may read files and run programs.

use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;
const MAX_FUNCTION_LINES: usize = 80;

/// What a pure file must not name: other layers, and every way to reach the outside world.
const IMPURE: &[&str] = &[
    "crate::sys",
    "crate::run",
    "crate::cmd",
    "crate::flags",
    "std::fs",
    "std::process",
    "std::env",
    "std::net",
    "std::thread",
    "std::io::stdin",
    "std::io::stdout",
    "std::io::stderr",
    "Instant",
    "::now(",
    "println!",
    "eprintln!",
    "print!",
    "eprint!",
    "say!",
    "say_raw!",
];

/// Ways around the one output sink (sys/output.rs), which tests capture.
const AROUND_THE_SINK: &[&str] =
    &["println!", "print!(", "eprintln!", "eprint!(", "std::io::stdout", "std::io::stderr", "io::stdout()"];

/// What sys/ must not name: the layers above it.
const ABOVE_SYS: &[&str] = &["crate::plan", "crate::run", "crate::cmd", "crate::flags"];

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path: PathBuf = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                files.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files.sort();
    assert!(files.len() > 20, "the tidy test found only {} source files", files.len());
    files
}

/// The production part of a file: everything before its test module.
fn production(text: &str) -> &str {
    match text.find("\n#[cfg(test)]\nmod ") {
        Some(at) => &text[..at + 1],
        None => text,
    }
}

/// Lines that name one of `words`, comments aside: `file:line: word`.
fn naming(file: &str, text: &str, words: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (number, line) in production(text).lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        for word in words.iter().filter(|w| code.contains(**w)) {
            found.push(format!("{file}:{}: {word}", number + 1));
        }
    }
    found
}

/// Functions longer than `limit` lines: `file:line: name (N lines)`. rustfmt puts a body's
/// closing brace at the indentation of its `fn`, which is what this relies on.
fn long_functions(file: &str, text: &str, limit: usize) -> Vec<String> {
    let lines: Vec<&str> = production(text).lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let signature = ["fn ", "pub fn ", "pub(crate) fn ", "pub(super) fn ", "const fn ", "pub const fn "];
        if !signature.iter().any(|s| code.starts_with(s)) {
            continue;
        }
        let indent = &line[..line.len() - code.len()];
        let opens = lines[start..].iter().position(|l| {
            let l = l.trim_end();
            l.ends_with('{') || l.ends_with(';') || l.ends_with('}')
        });
        let Some(opens) = opens.map(|o| start + o) else { continue };
        if !lines[opens].trim_end().ends_with('{') {
            continue; // a declaration without a body, or a body on one line
        }
        let close = format!("{indent}}}");
        let Some(end) = lines[opens..].iter().position(|l| *l == close).map(|e| opens + e) else {
            found.push(format!("{file}:{}: the end of this function cannot be found", start + 1));
            continue;
        };
        let length = end - start + 1;
        if length > limit {
            let name = code.split("fn ").nth(1).unwrap_or_default();
            let name = name.split(['(', '<']).next().unwrap_or_default();
            found.push(format!("{file}:{}: {name} ({length} lines)", start + 1));
        }
    }
    found
}

fn output_violations(file: &str, text: &str) -> Vec<String> {
    match file {
        "sys/output.rs" => Vec::new(),
        _ => naming(file, text, AROUND_THE_SINK),
    }
}

fn layer_violations(file: &str, text: &str) -> Vec<String> {
    let pure = file.starts_with("model/") || file.starts_with("plan/") || file == "dockerfile.rs";
    match (pure, file.starts_with("sys/")) {
        (true, _) => naming(file, text, IMPURE),
        (_, true) => naming(file, text, ABOVE_SYS),
        _ => Vec::new(),
    }
}

#[test]
fn model_and_plan_are_pure_and_sys_does_not_reach_up() {
    let found: Vec<String> = sources().iter().flat_map(|(file, text)| layer_violations(file, text)).collect();
    assert!(found.is_empty(), "layering broken (see docs: Layering):\n{}", found.join("\n"));
}

#[test]
fn all_output_goes_through_the_one_sink() {
    let found: Vec<String> =
        sources().iter().flat_map(|(file, text)| output_violations(file, text)).collect();
    assert!(
        found.is_empty(),
        "output that tests cannot capture (use sys::output or the Log):\n{}",
        found.join("\n")
    );
}

#[test]
fn no_production_file_is_too_long() {
    let found: Vec<String> = sources()
        .iter()
        .map(|(file, text)| (file, production(text).lines().count()))
        .filter(|(_, lines)| *lines > MAX_FILE_LINES)
        .map(|(file, lines)| format!("{file}: {lines} lines"))
        .collect();
    assert!(
        found.is_empty(),
        "files over {MAX_FILE_LINES} lines before their tests; split them where the seams are:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_production_function_is_too_long() {
    let found: Vec<String> =
        sources().iter().flat_map(|(file, text)| long_functions(file, text, MAX_FUNCTION_LINES)).collect();
    assert!(found.is_empty(), "functions over {MAX_FUNCTION_LINES} lines:\n{}", found.join("\n"));
}

/// The checks catch what they are for (else the tests above could never fail).
#[test]
fn each_rule_can_fail() {
    let impure = "use crate::model::oci;\nfn now() -> u64 { std::time::SystemTime::now(); 0 }\n";
    assert_eq!(layer_violations("model/x.rs", impure), ["model/x.rs:2: ::now("]);
    assert_eq!(
        layer_violations("plan/x.rs", "use crate::sys::docker::Docker;\n"),
        ["plan/x.rs:1: crate::sys"]
    );
    assert_eq!(layer_violations("sys/x.rs", "use crate::plan::Plan; // plan\n"), ["sys/x.rs:1: crate::plan"]);
    // Comments, tests and the layers allowed to reach out are not held to it.
    assert!(layer_violations("model/x.rs", "// std::fs is not used here\n").is_empty());
    assert!(layer_violations("model/x.rs", "fn a() {}\n\n#[cfg(test)]\nmod tests {\n    use std::fs;\n}\n")
        .is_empty());
    assert!(layer_violations("run/x.rs", "use crate::sys::docker::Docker;\n").is_empty());
    assert_eq!(output_violations("cmd/x.rs", "    println!(\"{x}\");\n"), ["cmd/x.rs:1: println!"]);
    assert!(output_violations("sys/output.rs", "std::io::stdout().lock()\n").is_empty());

    let body = |n: usize| {
        format!(
            "    pub fn long(\n        a: u8,\n    ) -> u8 {{\n{}        a\n    }}\n",
            "        let _ = 1;\n".repeat(n)
        )
    };
    let text = format!("impl X {{\n{}    fn short() {{}}\n    fn decl(&self);\n}}\n", body(80));
    assert_eq!(long_functions("x.rs", &text, 80), ["x.rs:2: long (85 lines)"]);
    assert!(long_functions("x.rs", &format!("impl X {{\n{}}}\n", body(75)), 80).is_empty());
    assert_eq!(production("a\n#[cfg(test)]\nmod tests {}\n"), "a\n");
}
