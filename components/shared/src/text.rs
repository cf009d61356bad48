//! What text that other people read (messages, notes, room names) may contain, in one place.

/// Whether `character` is refused in such text: control characters, except the line breaks and
/// tabs the caller names in `allowed_controls`, and the explicit bidirectional embeddings,
/// overrides and isolates (U+202A to U+202E, U+2066 to U+2069). Those reorder what surrounds them
/// on the reader's screen: a room named "Refunds \u{202e}DSU 00.0001 diap" reads "Refunds paid
/// 1000.00 USD". Right-to-left text needs none of them (the marks U+200E and U+200F stay allowed).
pub fn is_refused(character: char, allowed_controls: &[char]) -> bool {
    (character.is_control() && !allowed_controls.contains(&character))
        || matches!(character, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::is_refused;

    #[test]
    fn control_and_direction_override_characters_are_refused() {
        for refused in ['\u{7}', '\u{1b}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\n'] {
            assert!(is_refused(refused, &[]), "{refused:?}");
        }
        for allowed in ['a', 'é', 'ש', '\u{200f}', '\u{200e}', ' ', '💸'] {
            assert!(!is_refused(allowed, &[]), "{allowed:?}");
        }
        assert!(!is_refused('\n', &['\n']));
    }
}
