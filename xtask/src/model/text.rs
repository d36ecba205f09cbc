//! Text read from an image or a repository (package names, versions and licenses, file names,
//! labels, Dockerfile text, git paths) is untrusted: made safe here before it is printed, so it
//! can neither start a line of its own (a workflow command such as `::error::` or `::add-mask::`
//! in GitHub Actions) nor break the Markdown of a job summary. Pure.

/// `text` on one line: control characters (newlines, carriage returns, escapes) spelled out as
/// Rust writes them (`\n`, `\u{1b}`).
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` as plain text in a Markdown table cell or list item: on one line, with the characters
/// that would end a cell, open an HTML tag, a code span or a link, or start an entity written
/// as entities. (Emphasis marks are left: at worst they change how a name looks.)
pub fn markdown(text: &str) -> String {
    one_line(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('|', "&#124;")
        .replace('`', "&#96;")
        .replace('[', "&#91;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_stays_on_its_line_and_in_its_cell() {
        let evil = "pkg\n::error title=X::pwned\r\u{1b}[31m";
        assert_eq!(one_line(evil), "pkg\\n::error title=X::pwned\\r\\u{1b}[31m");
        assert!(!one_line(evil).contains('\n'));
        let cell = markdown("a|b <img src=x> `code` [link](x) &amp;\nnext -> v1_2");
        assert_eq!(cell, "a&#124;b &lt;img src=x> &#96;code&#96; &#91;link](x) &amp;amp;\\nnext -> v1_2");
        assert_eq!(one_line("openssl 3.1.4-r1 -> 3.1.4-r5"), "openssl 3.1.4-r1 -> 3.1.4-r5");
    }
}
