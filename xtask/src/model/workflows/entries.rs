//! A workflow read as a list of `key: value` entries, each with its line and indentation:
//! comments, quotes and extra blanks dropped, a sequence item's `- ` counted as indentation,
//! and a flow mapping (`{ a: b, c: d }`) spread into one entry per key. Enough of YAML for the
//! rules of our own workflows, whatever way a key or value is spelled.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub indent: usize,
    /// Empty for a bare value (a list item, a block scalar's line).
    pub key: String,
    pub value: String,
}

impl Entry {
    /// The value without blanks, so that `${{matrix.x}}` and `${{ matrix.x }}` are one value.
    pub fn compact(&self) -> String {
        self.value.chars().filter(|c| !c.is_whitespace()).collect()
    }
}

pub fn entries(text: &str) -> Vec<Entry> {
    let mut found = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let code = without_comment(raw);
        if code.trim().is_empty() {
            continue;
        }
        let mut indent = code.len() - code.trim_start().len();
        let mut rest = code.trim();
        while let Some(item) = rest.strip_prefix('-').filter(|r| r.is_empty() || r.starts_with(' ')) {
            indent += 1 + (item.len() - item.trim_start().len());
            rest = item.trim_start();
        }
        if rest.is_empty() {
            continue;
        }
        let line = i + 1;
        if rest.starts_with('{') {
            found.extend(flow(rest, line, indent));
            continue;
        }
        match split_key(rest) {
            Some((key, value)) if value.starts_with('{') && value.ends_with('}') && value != "{}" => {
                found.push(Entry { line, indent, key: key.clone(), value: String::new() });
                found.extend(flow(&value, line, indent + 2));
            }
            Some((key, value)) => found.push(Entry { line, indent, key, value }),
            None => found.push(Entry { line, indent, key: String::new(), value: unquote(rest) }),
        }
    }
    found
}

/// The entries of a flow mapping `{ a: b, c: d }` (nested ones flattened one level deeper).
fn flow(text: &str, line: usize, indent: usize) -> Vec<Entry> {
    let inner = text.trim().trim_start_matches('{').trim_end_matches('}');
    let mut found = Vec::new();
    for part in split_top(inner) {
        match split_key(part.trim()) {
            Some((key, value)) if value.starts_with('{') => {
                found.push(Entry { line, indent, key, value: String::new() });
                found.extend(flow(&value, line, indent + 2));
            }
            Some((key, value)) => found.push(Entry { line, indent, key, value }),
            None if !part.trim().is_empty() => {
                found.push(Entry { line, indent, key: String::new(), value: unquote(part.trim()) })
            }
            None => {}
        }
    }
    found
}

/// `key: value` at its first `: ` (or a final `:`) outside quotes and `${{ }}`.
fn split_key(text: &str) -> Option<(String, String)> {
    let bytes = text.as_bytes();
    let (mut quote, mut depth) = (None, 0);
    for (i, &b) in bytes.iter().enumerate() {
        match (b, quote) {
            (b'"' | b'\'', None) => quote = Some(b),
            (q, Some(open)) if q == open => quote = None,
            (b'{', None) => depth += 1,
            (b'}', None) => depth -= 1,
            (b':', None) if depth == 0 && (i + 1 == bytes.len() || bytes[i + 1] == b' ') => {
                return Some((unquote(text[..i].trim()), unquote(text[i + 1..].trim())));
            }
            _ => {}
        }
    }
    None
}

/// Splits at commas outside quotes, braces and brackets.
fn split_top(text: &str) -> Vec<&str> {
    let (mut parts, mut start, mut depth, mut quote) = (Vec::new(), 0, 0i32, None);
    for (i, b) in text.bytes().enumerate() {
        match (b, quote) {
            (b'"' | b'\'', None) => quote = Some(b),
            (q, Some(open)) if q == open => quote = None,
            (b'{' | b'[', None) => depth += 1,
            (b'}' | b']', None) => depth -= 1,
            (b',', None) if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The line without a comment: `#` at its start or after a blank, outside quotes.
pub fn without_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = b' ';
    for (i, b) in line.bytes().enumerate() {
        match (b, quote) {
            (b'"' | b'\'', None) => quote = Some(b),
            (q, Some(open)) if q == open => quote = None,
            (b'#', None) if previous == b' ' || previous == b'\t' => return line[..i].trim_end(),
            _ => {}
        }
        previous = b;
    }
    line
}

fn unquote(text: &str) -> String {
    let t = text.trim();
    let quoted = t.len() >= 2
        && ((t.starts_with('"') && t.ends_with('"')) || (t.starts_with('\'') && t.ends_with('\'')));
    if quoted {
        t[1..t.len() - 1].to_string()
    } else {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_key_and_value_is_one_entry() {
        let text = "permissions:\n  \"id-token\":   'write'   # OIDC\n  attestations: write\njobs:\n  a: # note\n    \
                    permissions: { contents: read, packages: \"write\" }\n    steps:\n      - { uses: 'x/y@v1', with: { subject-digest: sha } }\n      - run: cargo xtask ci-main\n";
        let found: Vec<(usize, String, String)> =
            entries(text).into_iter().map(|e| (e.indent, e.key, e.value)).collect();
        let has = |indent: usize, key: &str, value: &str| {
            assert!(
                found.contains(&(indent, key.to_string(), value.to_string())),
                "{indent} {key}: {value} in {found:?}"
            );
        };
        has(2, "id-token", "write");
        has(2, "a", "");
        has(6, "packages", "write");
        has(8, "uses", "x/y@v1");
        has(10, "subject-digest", "sha");
        has(8, "run", "cargo xtask ci-main");
        assert_eq!(without_comment("key: 'a # b' # c"), "key: 'a # b'");
        assert_eq!(without_comment("url: http://x/#frag"), "url: http://x/#frag");
    }
}
