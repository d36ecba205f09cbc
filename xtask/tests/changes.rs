//! --changed-since, ci-pr's comparison with the pull request's base, and `matrix`, in real git
//! repositories, against a fake docker.

mod support;

use std::path::Path;
use std::process::Command;

use support::{run, Fixture};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.email=dev@example.test", "-c", "user.name=dev", "-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The fixture as a repository: base copies shared.sh, child is built on base, quiet stands
/// alone; everything committed, with origin/main pointing at that commit.
fn repository() -> Fixture {
    let f = Fixture::new("changes");
    let dockerfile = f.dir.path().join("Dockerfile-base");
    let text = std::fs::read_to_string(&dockerfile).unwrap() + "COPY shared.sh /shared.sh\n";
    std::fs::write(&dockerfile, text).unwrap();
    f.dir.write("shared.sh", "echo shared\n");
    f.dir.write("notes.md", "nothing an image copies\n");
    git(f.dir.path(), &["init", "-q"]);
    git(f.dir.path(), &["add", "-A"]);
    git(f.dir.path(), &["commit", "-q", "-m", "images"]);
    git(f.dir.path(), &["update-ref", "refs/remotes/origin/main", "HEAD"]);
    f
}

fn built(f: &Fixture) -> Vec<String> {
    let mut names: Vec<String> = f
        .docker
        .calls_of("build")
        .iter()
        .map(|c| {
            c.iter().find(|a| a.contains("Dockerfile-")).unwrap().rsplit('-').next().unwrap().to_string()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn a_change_to_one_leaf_image_builds_that_image_alone() {
    let f = repository();
    f.dir.write(
        "Dockerfile-quiet",
        &(std::fs::read_to_string(f.dir.path().join("Dockerfile-quiet")).unwrap() + "RUN true\n"),
    );
    let out = f.run(&["list", "--changed-since", "HEAD"], &[]).ok();
    assert!(
        out.stdout.contains("quiet") && out.stdout.contains("Dockerfile-quiet changed"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("\nbase ") && !out.stdout.contains("\nchild "), "{}", out.stdout);
    f.run(&["build", "--changed-since", "HEAD"], &[]).ok();
    assert_eq!(built(&f), ["quiet"]);
}

/// `list --changed-since` shows what `build --changed-since` builds: a changed child's parent
/// is built too (the child is built on the parent of the same run), and says why.
#[test]
fn a_changed_child_lists_the_parent_it_is_built_on() {
    let f = repository();
    let dockerfile = f.dir.path().join("Dockerfile-child");
    f.dir.write("Dockerfile-child", &(std::fs::read_to_string(&dockerfile).unwrap() + "RUN true\n"));
    let out = f.run(&["list", "--json", "--changed-since", "HEAD"], &[]).ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let reasons: Vec<(&str, &str)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [("base", "unchanged, built first: child is built on it"), ("child", "Dockerfile-child changed")]
    );
    f.run(&["build", "--changed-since", "HEAD"], &[]).ok();
    assert_eq!(built(&f), ["base", "child"]);
}

/// A file the image copies counts when it is moved away or renamed (at its old path), when
/// git would quote its name, and when the COPY names it through an ARG.
#[test]
fn moved_oddly_named_and_arg_named_inputs_count() {
    let f = repository();
    let text = std::fs::read_to_string(f.dir.path().join("Dockerfile-quiet")).unwrap();
    f.dir.write("Dockerfile-quiet", &(text + "ARG DIR=conf\nCOPY ${DIR}/ /conf/\n"));
    f.dir.write("conf/é.txt", "x\n");
    f.dir.write("conf/keep.txt", "x\n");
    git(f.dir.path(), &["add", "-A"]);
    git(f.dir.path(), &["commit", "-q", "-m", "conf"]);
    git(f.dir.path(), &["update-ref", "refs/remotes/origin/main", "HEAD"]);
    let changed = |f: &Fixture| {
        let out = f.run(&["list", "--json", "--changed-since", "origin/main"], &[]).ok();
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        json.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    // Renamed out of what the image copies: a build would now miss it.
    git(f.dir.path(), &["mv", "conf/keep.txt", "kept.txt"]);
    git(f.dir.path(), &["commit", "-q", "-m", "move"]);
    assert_eq!(changed(&f), ["quiet"]);
    git(f.dir.path(), &["reset", "-q", "--hard", "origin/main"]);
    // A name git quotes.
    f.dir.write("conf/é.txt", "changed\n");
    assert_eq!(changed(&f), ["quiet"]);
    // An option is never taken for a reference.
    let out = f.run(&["list", "--changed-since", "--all"], &[]).fails();
    assert!(out.stderr.contains("--changed-since needs a value"), "{}", out.stderr);
    let out = f.run(&["list", "--changed-since=--all"], &[]).fails();
    assert!(out.stderr.contains("is not a git reference"), "{}", out.stderr);
}

#[test]
fn a_copied_file_rebuilds_its_image_and_what_is_built_on_it() {
    let f = repository();
    f.dir.write("shared.sh", "echo changed\n");
    let out = f.run(&["list", "--json", "--changed-since", "HEAD"], &[]).ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let reasons: Vec<(String, String)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap().to_string(), i["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("base".to_string(), "shared.sh changed".to_string()),
            ("child".to_string(), "built on base, which is rebuilt".to_string())
        ]
    );
    f.run(&["build", "--changed-since", "HEAD"], &[]).ok();
    assert_eq!(built(&f), ["base", "child"]);
}

/// Unrelated files build nothing. In images.toml, an image's own entry selects that image (and
/// what is built on it); a comment or a support date selects nothing; the registry, which every
/// image's name depends on, selects everything.
#[test]
fn unrelated_files_build_nothing_and_the_inventory_builds_what_its_entries_change() {
    let f = repository();
    f.dir.write("notes.md", "still nothing an image copies\n");
    let out = f.run(&["build", "--changed-since", "HEAD"], &[]).ok();
    assert!(out.stderr.contains("no image is affected by the changes since HEAD"), "{}", out.stderr);
    assert!(built(&f).is_empty());

    let original = std::fs::read_to_string(&f.inventory).unwrap();
    let with_base = |extra: &str| {
        original.replace(
            "dockerfile = \"Dockerfile-base\"\n",
            &format!("dockerfile = \"Dockerfile-base\"\n{extra}"),
        )
    };
    std::fs::write(&f.inventory, with_base("# a comment\nbase_support_ends = 2027-11-01\n")).unwrap();
    let out = f.run(&["list", "--changed-since", "HEAD"], &[]).ok();
    assert!(out.stdout.contains("no image is affected by the changes since HEAD"), "{}", out.stdout);

    std::fs::write(&f.inventory, with_base("build_args = { A = \"1\" }\n")).unwrap();
    let out = f.run(&["list", "--changed-since", "HEAD"], &[]).ok();
    assert!(out.stdout.contains("its entry in images.toml changed"), "{}", out.stdout);
    f.run(&["build", "--changed-since", "HEAD"], &[]).ok();
    assert_eq!(built(&f), ["base", "child"], "base's entry, and child built on it");

    let registry = original.lines().find(|l| l.starts_with("registry")).unwrap().to_string();
    std::fs::write(
        &f.inventory,
        original.replace(&registry, &format!("{}-moved\"", registry.trim_end_matches('"'))),
    )
    .unwrap();
    let out = f.run(&["list", "--changed-since", "HEAD"], &[]).ok();
    assert!(out.stdout.contains("images.toml changed, so every image is rebuilt"), "{}", out.stdout);
}

#[test]
fn ci_pr_compares_with_the_pull_request_base() {
    let f = repository();
    git(f.dir.path(), &["checkout", "-q", "-b", "feature"]);
    f.dir.write(
        "Dockerfile-quiet",
        &(std::fs::read_to_string(f.dir.path().join("Dockerfile-quiet")).unwrap() + "RUN true\n"),
    );
    git(f.dir.path(), &["commit", "-q", "-am", "touch quiet"]);
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_BASE_REF", "main"),
        ("GITHUB_TOKEN", "t"),
        ("GITHUB_ACTOR", "octo"),
    ];
    f.run(&["ci-pr"], &env).ok();
    // The write probe (base, pushed as the test package) always runs; of the rest, quiet alone.
    assert_eq!(built(&f), ["base", "quiet"]);
    assert_eq!(f.pushes(), [format!("push {}/test:do_not_use", f.reg())]);

    // Without a token (a fork), the warning says what is still built.
    let env = [("GITHUB_ACTIONS", "true"), ("GITHUB_BASE_REF", "main")];
    let out = f.run(&["ci-pr"], &env).ok();
    assert!(out.all().contains("building the images the change touches anyway"), "{}", out.all());

    // A base that cannot be compared: a warning, and every image.
    let f2 = repository();
    let env = [("GITHUB_ACTIONS", "true"), ("GITHUB_BASE_REF", "gone")];
    let out = f2.run(&["ci-pr"], &env).ok();
    assert!(out.all().contains("::warning::--changed-since origin/gone"), "{}", out.stdout);
    assert_eq!(built(&f2), ["base", "child", "quiet"]);
}

#[test]
fn matrix_groups_images_that_build_together() {
    let f = repository();
    let out = f.run(&["matrix"], &[]).ok();
    assert_eq!(
        out.stdout.trim(),
        r#"{"include":[{"group":"base","images":"base child"},{"group":"quiet","images":"quiet"}]}"#
    );
    f.dir.write("Dockerfile-quiet", "FROM base:1\nRUN true\n");
    let out = f.run(&["matrix", "--changed-since", "HEAD"], &[]).ok();
    assert_eq!(out.stdout.trim(), r#"{"include":[{"group":"quiet","images":"quiet"}]}"#);
    let output = f.dir.path().join("output.txt");
    let out = run(f.xtask(&["matrix"]).env("GITHUB_ACTIONS", "true").env("GITHUB_OUTPUT", &output));
    out.ok();
    assert!(std::fs::read_to_string(&output).unwrap().starts_with("matrix={\"include\":["));
}

#[test]
fn changed_since_outside_git_or_with_names_is_a_clear_error() {
    let f = Fixture::new("changes");
    let out = f.run(&["build", "--changed-since", "HEAD"], &[]).fails();
    assert!(out.stderr.contains("needs a git repository"), "{}", out.stderr);
    let f = repository();
    let out = f.run(&["build", "base", "--changed-since", "HEAD"], &[]).fails();
    assert!(out.stderr.contains("--changed-since and image names do not go together"), "{}", out.stderr);
    let out = f.run(&["build", "--changed-since", "no-such-ref"], &[]).fails();
    assert!(
        out.stderr.contains("--changed-since no-such-ref: git cannot relate it to HEAD"),
        "{}",
        out.stderr
    );
    assert!(built(&f).is_empty());
}

/// Inputs are what Docker copies: a COPY of a symlink counts its target's changes, a COPY
/// through a linked folder counts the folder's, and a wildcard with a character class reaches
/// what Docker's matching reaches.
#[test]
fn symlinked_files_and_folders_count_through_their_targets() {
    let f = repository();
    for (name, copy) in [
        ("base", "COPY onlylink.txt /\n"),
        ("child", "COPY conf/app.conf /etc/app/\n"),
        ("quiet", "COPY notes[0-9].txt /\n"),
    ] {
        let dockerfile = f.dir.path().join(format!("Dockerfile-{name}"));
        std::fs::write(&dockerfile, std::fs::read_to_string(&dockerfile).unwrap() + copy).unwrap();
    }
    f.dir.write("linktarget.txt", "l2\n");
    std::os::unix::fs::symlink("linktarget.txt", f.dir.path().join("onlylink.txt")).unwrap();
    f.dir.write("shared/conf/app.conf", "level=2\n");
    std::os::unix::fs::symlink("shared/conf", f.dir.path().join("conf")).unwrap();
    // Links that point out of the context are followed inside it, as Docker does.
    f.dir.write("outside.txt", "in the context\n");
    f.dir.write("sub/keep", "");
    std::os::unix::fs::symlink("../outside.txt", f.dir.path().join("sub/up")).unwrap();
    std::os::unix::fs::symlink("/outside.txt", f.dir.path().join("sub/absolute")).unwrap();
    let dockerfile = f.dir.path().join("Dockerfile-quiet");
    let text = std::fs::read_to_string(&dockerfile).unwrap() + "COPY sub/absolute /a\n";
    std::fs::write(&dockerfile, text).unwrap();
    f.dir.write("notes1.txt", "one\n");
    f.dir.write("notesx.txt", "not matched\n");
    git(f.dir.path(), &["add", "-A"]);
    git(f.dir.path(), &["commit", "-q", "-m", "links"]);

    f.dir.write("linktarget.txt", "l3-CHANGED\n");
    let out = f.run(&["list", "--changed-since", "HEAD"], &[]).ok();
    assert!(out.stdout.contains("linktarget.txt changed"), "{}", out.stdout);
    assert!(!out.stdout.contains("quiet"), "{}", out.stdout);
    git(f.dir.path(), &["checkout", "-q", "--", "."]);

    f.dir.write("shared/conf/app.conf", "level=3\n");
    let out = f.run(&["list", "--changed-since", "HEAD"], &[]).ok();
    let child = out.stdout.lines().find(|l| l.starts_with("child ")).unwrap_or_default();
    assert!(child.contains("shared/conf/app.conf changed"), "{}", out.stdout);
    let base = out.stdout.lines().find(|l| l.starts_with("base ")).unwrap_or_default();
    assert!(base.contains("unchanged, built first"), "base is only built first:\n{}", out.stdout);
    git(f.dir.path(), &["checkout", "-q", "--", "."]);

    f.dir.write("outside.txt", "changed\n");
    let out = f.run(&["list", "--changed-since", "HEAD"], &[]).ok();
    let quiet = out.stdout.lines().find(|l| l.starts_with("quiet ")).unwrap_or_default();
    assert!(quiet.contains("outside.txt changed"), "{}", out.stdout);
    git(f.dir.path(), &["checkout", "-q", "--", "."]);

    f.dir.write("notesx.txt", "still not matched\n");
    let out = f.run(&["list", "--changed-since", "HEAD", "--json"], &[]).ok();
    assert_eq!(out.stdout.trim(), "[]", "{}", out.stdout);
    f.dir.write("notes1.txt", "changed\n");
    let out = f.run(&["list", "--changed-since", "HEAD"], &[]).ok();
    assert!(out.stdout.contains("notes1.txt changed"), "{}", out.stdout);
}
