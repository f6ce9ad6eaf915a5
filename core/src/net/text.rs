//! Text that came from the network, made safe to show: what a provider (or
//! anyone in front of it) sends reaches a terminal (`sessionctl`), a log
//! line (the diagnostic log escapes ESC but not CR or LF) and the window.
//! Control characters (C0, DEL, C1: ANSI escapes, line breaks that forge
//! log lines) and the bidirectional overrides that reorder what a terminal
//! shows are dropped, and the text is cut at a length.

/// `text` without control characters or bidirectional overrides, at most
/// `max_chars` characters long.
pub fn printable(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control() && !is_bidi_override(*c))
        .take(max_chars)
        .collect()
}

/// The embedding, override and isolate controls (U+202A..U+202E,
/// U+2066..U+2069) and the implicit marks (U+200E, U+200F, U+061C).
fn is_bidi_override(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_line_breaks_and_overrides_are_dropped_and_the_rest_kept() {
        assert_eq!(printable("\u{1b}[31mred\u{1b}[0m", 100), "[31mred[0m");
        assert_eq!(
            printable("Berlin\n2026-12-05T00:00:00Z INFO forged", 100),
            "Berlin2026-12-05T00:00:00Z INFO forged"
        );
        assert_eq!(printable("a\rb\tc\u{7f}d\u{9b}e", 100), "abcde");
        assert_eq!(printable("evil\u{202E}gpj.exe", 100), "evilgpj.exe");
        assert_eq!(printable("Zürich, 東京 — ok", 100), "Zürich, 東京 — ok");
        assert_eq!(printable("abcdef", 3), "abc");
    }
}
