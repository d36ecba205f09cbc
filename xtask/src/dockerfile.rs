//! The one reader of Dockerfile instructions, used by `check`, the parent rules of every
//! building command and `--changed-since`. Pure.
//!
//! It follows the Dockerfile reference: the `escape` parser directive, line continuations
//! (comment and empty lines inside them are dropped), JSON (exec) and shell forms, flags such
//! as `--platform` and `--from`, heredocs, ARGs with quoted defaults, and `$VAR`, `${VAR}`,
//! `${VAR:-word}` and `${VAR:+word}` in FROM.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The lines it spans (1-based, inclusive).
    pub first_line: usize,
    pub last_line: usize,
    /// Upper-cased: `FROM`, `ARG`, `COPY`...
    pub keyword: String,
    /// `--name=value` flags before the arguments (`--platform`, `--from`, `--chown`...).
    pub flags: Vec<(String, String)>,
    /// The arguments: the JSON array's strings, or the shell form's words (quotes removed).
    pub args: Vec<String>,
}

/// A `FROM`: the image as written, what it names once the ARGs are substituted, its stage name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub line: usize,
    pub image: String,
    pub resolved: String,
    pub stage: Option<String>,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub instructions: Vec<Instruction>,
}

impl Dockerfile {
    pub fn parse(text: &str) -> Dockerfile {
        let escape = escape_directive(text);
        let mut instructions = Vec::new();
        let mut current: Option<(usize, String)> = None;
        let mut heredocs: Vec<String> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            // Inside a heredoc, lines are its content until its terminator.
            if let Some(end) = heredocs.first() {
                if line.trim_start_matches('\t') == end {
                    heredocs.remove(0);
                }
                continue;
            }
            let trimmed = line.trim();
            if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_some()) {
                continue;
            }
            if trimmed.is_empty() {
                continue;
            }
            let (start, mut joined) = current.take().unwrap_or((number, String::new()));
            match trimmed.strip_suffix(escape) {
                Some(head) => {
                    joined.push_str(head);
                    joined.push(' ');
                    current = Some((start, joined));
                }
                None => {
                    joined.push_str(trimmed);
                    if let Some(instruction) = instruction(start, number, &joined, escape) {
                        heredocs = heredoc_terminators(&instruction);
                        instructions.push(instruction);
                    }
                }
            }
        }
        if let Some((start, joined)) = current {
            let last = text.lines().count();
            instructions.extend(instruction(start, last, joined.trim_end(), escape));
        }
        Dockerfile { instructions }
    }

    /// The ARGs declared before the first FROM (the only ones a FROM can use), with their
    /// defaults, in order.
    pub fn global_args(&self) -> Vec<(String, Option<String>)> {
        self.instructions
            .iter()
            .take_while(|i| i.keyword != "FROM")
            .filter(|i| i.keyword == "ARG")
            .flat_map(|i| i.args.iter().map(|a| arg_declaration(a)))
            .collect()
    }

    /// Every FROM, with `values` (build arguments given on the command line) taking the place
    /// of the ARGs' defaults.
    pub fn froms(&self, values: &BTreeMap<String, String>) -> Vec<From> {
        self.walk(values)
            .into_iter()
            .filter_map(|(i, scope)| {
                if i.keyword != "FROM" {
                    return None;
                }
                let image = i.args.first()?.clone();
                let stage = match i.args.get(1) {
                    Some(word) if word.eq_ignore_ascii_case("as") => i.args.get(2).cloned(),
                    _ => None,
                };
                let platform = i.flags.iter().find(|(k, _)| k == "platform").map(|(_, v)| v.clone());
                Some(From {
                    line: i.first_line,
                    resolved: substitute(&image, &scope),
                    image,
                    stage,
                    platform,
                })
            })
            .collect()
    }

    /// Every image the Dockerfile takes files from: its FROMs, `COPY --from=` / `ADD --from=`
    /// and `RUN --mount=...,from=`, leaving out build stages (by name or number) and `scratch`.
    pub fn image_references(&self, values: &BTreeMap<String, String>) -> Vec<ImageReference> {
        let mut stages: Vec<String> = Vec::new();
        let mut references = Vec::new();
        for (i, scope) in self.walk(values) {
            let written: Vec<String> = match i.keyword.as_str() {
                "FROM" => i.args.first().cloned().into_iter().collect(),
                "COPY" | "ADD" => {
                    i.flags.iter().filter(|(k, _)| k == "from").map(|(_, v)| v.clone()).collect()
                }
                "RUN" => i
                    .flags
                    .iter()
                    .filter(|(k, _)| k == "mount")
                    .flat_map(|(_, v)| {
                        v.split(',')
                            .filter_map(|o| o.strip_prefix("from=").map(String::from))
                            .collect::<Vec<_>>()
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for written in written {
                let resolved = substitute(&written, &scope);
                let stage = stages.iter().any(|s| s.eq_ignore_ascii_case(&resolved))
                    || (!resolved.is_empty() && resolved.bytes().all(|b| b.is_ascii_digit()))
                    || resolved.eq_ignore_ascii_case("scratch");
                if !stage {
                    references.push(ImageReference {
                        first_line: i.first_line,
                        last_line: i.last_line,
                        written,
                        resolved,
                    });
                }
            }
            if i.keyword == "FROM" {
                if let (Some(word), Some(name)) = (i.args.get(1), i.args.get(2)) {
                    if word.eq_ignore_ascii_case("as") {
                        stages.push(name.clone());
                    }
                }
            }
        }
        references
    }

    /// The context paths the build reads (relative to the context), with ARGs substituted: COPY
    /// and ADD sources and RUN bind mounts, leaving out what comes from other stages or images
    /// (`--from`), URLs and heredocs.
    pub fn context_sources(&self, values: &BTreeMap<String, String>) -> Vec<String> {
        self.walk(values)
            .into_iter()
            .flat_map(|(i, scope)| {
                let sources: Vec<String> = match i.keyword.as_str() {
                    "COPY" | "ADD" if !i.flags.iter().any(|(k, _)| k == "from") => {
                        i.args.split_last().map(|(_, sources)| sources.to_vec()).unwrap_or_default()
                    }
                    "RUN" => i
                        .flags
                        .iter()
                        .filter(|(k, _)| k == "mount")
                        .filter_map(|(_, v)| bind_source(v))
                        .collect(),
                    _ => Vec::new(),
                };
                sources.into_iter().map(move |s| substitute(&s, &scope))
            })
            .filter(|s| !s.contains("://") && !s.starts_with("<<"))
            .collect()
    }

    /// Each instruction with the ARGs in force where it stands: the global ARGs (before the
    /// first FROM) for FROM lines; in a stage, the ARGs the stage declares, a bare `ARG NAME`
    /// taking the global value. `values` (build arguments) replace defaults.
    fn walk(&self, values: &BTreeMap<String, String>) -> Vec<(&Instruction, BTreeMap<String, String>)> {
        let mut global: BTreeMap<String, String> = BTreeMap::new();
        let mut stage: Option<BTreeMap<String, String>> = None;
        let mut out = Vec::new();
        for i in &self.instructions {
            if i.keyword == "FROM" {
                out.push((i, global.clone()));
                stage = Some(BTreeMap::new());
                continue;
            }
            if i.keyword == "ARG" {
                for (name, default) in i.args.iter().map(|a| arg_declaration(a)) {
                    let scope = stage.as_ref().unwrap_or(&global);
                    // A default may use the ARGs declared before it.
                    let value = values
                        .get(&name)
                        .cloned()
                        .or_else(|| default.map(|d| substitute(&d, scope)))
                        .or_else(|| stage.as_ref().and(global.get(&name).cloned()));
                    let target = stage.as_mut().unwrap_or(&mut global);
                    match value {
                        Some(value) => target.insert(name, value),
                        None => target.remove(&name),
                    };
                }
            }
            out.push((i, stage.clone().unwrap_or_else(|| global.clone())));
        }
        out
    }
}

/// An image a Dockerfile takes files from, as written and with its ARGs substituted, and the
/// lines of the instruction that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    pub first_line: usize,
    pub last_line: usize,
    pub written: String,
    pub resolved: String,
}

/// The context path a `--mount=` option list binds: `type=bind` (the default type) without
/// `from=`; its `source` (or `src`), or the whole context.
fn bind_source(options: &str) -> Option<String> {
    let option =
        |name: &str| options.split(',').find_map(|o| o.strip_prefix(name).and_then(|v| v.strip_prefix('=')));
    let kind = option("type").unwrap_or("bind");
    if kind != "bind" || option("from").is_some() {
        return None;
    }
    Some(option("source").or_else(|| option("src")).unwrap_or(".").to_string())
}

/// `# escape=`` ` `` among the parser directives at the top; `\` otherwise.
fn escape_directive(text: &str) -> char {
    for line in text.lines() {
        let Some(comment) = line.trim().strip_prefix('#') else { break };
        let Some((key, value)) = comment.split_once('=') else { break };
        if key.trim().eq_ignore_ascii_case("escape") {
            return value.trim().chars().next().filter(|c| *c == '`' || *c == '\\').unwrap_or('\\');
        }
    }
    '\\'
}

fn instruction(first_line: usize, last_line: usize, text: &str, escape: char) -> Option<Instruction> {
    let (keyword, rest) = text.trim().split_once(char::is_whitespace).unwrap_or((text.trim(), ""));
    if keyword.is_empty() {
        return None;
    }
    let mut rest = rest.trim_start();
    let mut flags = Vec::new();
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        let (name, value) = flag[..end].split_once('=').unwrap_or((&flag[..end], ""));
        flags.push((name.to_ascii_lowercase(), value.to_string()));
        rest = flag[end..].trim_start();
    }
    let args = match json_array(rest) {
        Some(items) => items,
        None => words(rest, escape),
    };
    Some(Instruction { first_line, last_line, keyword: keyword.to_ascii_uppercase(), flags, args })
}

/// `["a", "b c"]` as its strings, or `None` when the text is not a JSON array of strings (the
/// Dockerfile then reads it as the shell form).
fn json_array(text: &str) -> Option<Vec<String>> {
    if !text.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(text).ok()
}

/// Shell-form words: split on white space, with '…' and "…" quoting and the escape character.
fn words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), c) if c == escape => word.extend(chars.next()),
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c == escape => {
                word.extend(chars.next());
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// `NAME=value` or `NAME` of an ARG.
fn arg_declaration(word: &str) -> (String, Option<String>) {
    match word.split_once('=') {
        Some((name, value)) => (name.to_string(), Some(value.to_string())),
        None => (word.to_string(), None),
    }
}

/// The words that end the heredocs an instruction opens (`<<EOF`, `<<-EOF`, `<<"EOF"`).
fn heredoc_terminators(instruction: &Instruction) -> Vec<String> {
    instruction
        .args
        .iter()
        .filter_map(|a| a.strip_prefix("<<"))
        .map(|a| a.trim_start_matches('-').trim_matches(|c| c == '"' || c == '\'').to_string())
        .filter(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect()
}

/// Replaces `$NAME`, `${NAME}`, `${NAME:-word}` and `${NAME:+word}`; unknown names become empty,
/// as the builder makes them.
pub fn substitute(text: &str, scope: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(inner) = after.strip_prefix('{') {
            let Some(end) = inner.find('}') else {
                out.push_str(&rest[at..]);
                return out;
            };
            let expression = &inner[..end];
            let value = match expression.split_once(":-") {
                Some((name, word)) => {
                    scope.get(name).filter(|v| !v.is_empty()).cloned().unwrap_or_else(|| word.to_string())
                }
                None => match expression.split_once(":+") {
                    Some((name, word)) => scope
                        .get(name)
                        .filter(|v| !v.is_empty())
                        .map(|_| word.to_string())
                        .unwrap_or_default(),
                    None => scope.get(expression).cloned().unwrap_or_default(),
                },
            };
            out.push_str(&value);
            rest = &inner[end + 1..];
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            if end == 0 {
                out.push('$');
            } else {
                out.push_str(scope.get(&after[..end]).map_or("", String::as_str));
            }
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    out
}

/// Whether `image` (a FROM's image as written) is exactly a reference to the ARG `name`.
pub fn is_arg_reference(image: &str, name: &str) -> bool {
    image == format!("${{{name}}}") || image == format!("${name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn froms(text: &str) -> Vec<From> {
        Dockerfile::parse(text).froms(&BTreeMap::new())
    }

    #[test]
    fn continuations_comments_and_json_forms() {
        let d = Dockerfile::parse(
            "# syntax=docker/dockerfile:1\nFROM x\nRUN apk add \\\n# a comment inside\n\n    curl\nCOPY [\"with space.txt\", \"/x\"]\nCMD [\"sh\", \"-c\"]\n",
        );
        let keywords: Vec<&str> = d.instructions.iter().map(|i| i.keyword.as_str()).collect();
        assert_eq!(keywords, ["FROM", "RUN", "COPY", "CMD"]);
        assert_eq!((d.instructions[1].first_line, d.instructions[1].last_line), (3, 6));
        assert_eq!(d.instructions[1].args, ["apk", "add", "curl"]);
        assert_eq!(d.instructions[2].args, ["with space.txt", "/x"]);
    }

    #[test]
    fn the_escape_directive_changes_the_continuation() {
        let d = Dockerfile::parse("# escape=`\nFROM x\nCOPY a `\n  b c:\\dst\n");
        assert_eq!(d.instructions[1].args, ["a", "b", "c:\\dst"]);
    }

    #[test]
    fn copy_sources_skip_other_stages_urls_and_heredocs() {
        let d = Dockerfile::parse(
            "FROM x\nCOPY harden.sh /tmp/\nADD --chown=1:1 a b /dst/\nCOPY --from=build /out /out\n\
             COPY [\"with space.txt\", \"/x\"]\nADD https://example.com/f /f\nCOPY conf/*.yml \\\n /etc/\n\
             COPY <<EOF /etc/motd\nCOPY not-an-instruction /x\nEOF\nCOPY --link last /l\n",
        );
        assert_eq!(
            d.context_sources(&BTreeMap::new()),
            ["harden.sh", "a", "b", "with space.txt", "conf/*.yml", "last"]
        );
    }

    #[test]
    fn from_lines_with_args_platforms_and_stages() {
        let text = "ARG REGISTRY=ghcr.io/x\nARG BASE_IMAGE=\"${REGISTRY}/alpine:latest\" TAG\n\
                    FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS base\nARG LATE=nope\nFROM golang:${GO:-1.22} as b\nFROM base\n";
        let f = froms(text);
        assert_eq!(f.len(), 3);
        assert_eq!(
            (f[0].image.as_str(), f[0].resolved.as_str()),
            ("${BASE_IMAGE}", "ghcr.io/x/alpine:latest")
        );
        assert_eq!((f[0].stage.as_deref(), f[0].platform.as_deref()), (Some("base"), Some("$BUILDPLATFORM")));
        assert_eq!(f[1].resolved, "golang:1.22");
        assert_eq!(f[1].stage.as_deref(), Some("b"));
        assert_eq!(f[2].resolved, "base");
        let d = Dockerfile::parse(text);
        assert_eq!(
            d.global_args(),
            [
                ("REGISTRY".into(), Some("ghcr.io/x".into())),
                ("BASE_IMAGE".into(), Some("${REGISTRY}/alpine:latest".into())),
                ("TAG".into(), None)
            ]
        );
        // A value given on the command line takes the default's place.
        let values = BTreeMap::from([("BASE_IMAGE".to_string(), "r/run:1".to_string())]);
        assert_eq!(d.froms(&values)[0].resolved, "r/run:1");
    }

    #[test]
    fn substitution_forms() {
        let scope = BTreeMap::from([("A".to_string(), "x".to_string()), ("E".to_string(), String::new())]);
        assert_eq!(
            substitute("$A/${A}/${B:-d}/${E:-d}/${A:+set}/${B:+set}/$$/$", &scope),
            "x/x/d/d/set//$$/$"
        );
        assert!(is_arg_reference("${BASE_IMAGE}", "BASE_IMAGE"));
        assert!(is_arg_reference("$BASE_IMAGE", "BASE_IMAGE"));
        assert!(!is_arg_reference("${BASE_IMAGE}:x", "BASE_IMAGE"));
    }

    #[test]
    fn bind_mounts_read_the_context() {
        let d = Dockerfile::parse(
            "FROM x\nRUN --mount=type=bind,source=build.sh,target=/b sh /b\nRUN --mount=type=cache,target=/c true\n\
             RUN --mount=from=other,source=/x,target=/x true\nRUN --mount=target=/all true\nRUN --mount=type=bind,src=a,target=/a true\n",
        );
        assert_eq!(d.context_sources(&BTreeMap::new()), ["build.sh", ".", "a"]);
    }

    #[test]
    fn copy_sources_substitute_args() {
        let d =
            Dockerfile::parse("ARG DIR=conf\nFROM x\nARG DIR\nARG SUB=files\nCOPY ${DIR}/a $SUB/ /dst/\n");
        assert_eq!(d.context_sources(&BTreeMap::new()), ["conf/a", "files/"]);
        let values = BTreeMap::from([("SUB".to_string(), "other".to_string())]);
        assert_eq!(d.context_sources(&values), ["conf/a", "other/"]);
    }

    #[test]
    fn every_image_a_dockerfile_takes_files_from() {
        let text = "ARG BASE=r/base:latest\nFROM ${BASE} AS build\nFROM scratch AS empty\nFROM r/other:1\n\
                    ARG OLD=r/base:v0.9\nCOPY --from=build /a /a\nCOPY --from=0 /b /b\nCOPY --from=${OLD} /c /c\n\
                    ADD --from=r/tool:2 /d /d\nRUN --mount=type=bind,from=r/cache:3,target=/x true\nRUN --mount=type=cache,target=/y true\n";
        let refs: Vec<(String, usize)> = Dockerfile::parse(text)
            .image_references(&BTreeMap::new())
            .into_iter()
            .map(|r| (r.resolved, r.first_line))
            .collect();
        assert_eq!(
            refs,
            [
                ("r/base:latest".to_string(), 2),
                ("r/other:1".to_string(), 4),
                ("r/base:v0.9".to_string(), 8),
                ("r/tool:2".to_string(), 9),
                ("r/cache:3".to_string(), 10)
            ]
        );
    }

    #[test]
    fn odd_input_never_panics() {
        for text in
            ["", "\\", "FROM", "FROM \\", "ARG", "COPY [\"a\"", "FROM ${", "RUN <<\n", "# escape=x\nFROM a"]
        {
            let d = Dockerfile::parse(text);
            let _ = (
                d.froms(&BTreeMap::new()),
                d.context_sources(&BTreeMap::new()),
                d.global_args(),
                d.image_references(&BTreeMap::new()),
            );
        }
    }
}
