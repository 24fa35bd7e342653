//! Bounded echoes of bad input in error messages.
//!
//! A message that quotes what it refuses helps the caller, but an attacker's 4 MB id must not
//! come back as a 4 MB error (bandwidth, log volume, and a reflected payload). Every message
//! that quotes input goes through `input_prefix`; messages written by parsers we do not
//! control (serde_json, serde_urlencoded) go through `clip_parser_message`, which bounds each
//! quoted run the same way.

use std::borrow::Cow;

/// Characters of an offending input a message quotes; longer inputs end in `…`.
pub const QUOTED_INPUT_CHARS_MAX: usize = 64;

/// Characters of a whole parser message, a backstop for echoes `clip_parser_message` cannot
/// recognise as quoted (its own words are far shorter).
pub const PARSER_MESSAGE_CHARS_MAX: usize = 512;

/// At most the first `QUOTED_INPUT_CHARS_MAX` characters of `input`, with `…` when cut.
/// Cuts on a character boundary, so the result is always valid UTF-8.
pub fn input_prefix(input: &str) -> Cow<'_, str> {
    clip_chars(input, QUOTED_INPUT_CHARS_MAX)
}

/// A parser's error message with every run quoted in `"…"` (Rust debug quoting, escapes
/// respected) or in backticks cut by `input_prefix`, the whole bounded by
/// `PARSER_MESSAGE_CHARS_MAX`.
pub fn clip_parser_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(PARSER_MESSAGE_CHARS_MAX * 4));
    // (delimiter, byte offset where the quoted run starts)
    let mut open: Option<(char, usize)> = None;
    let mut escaped = false;
    for (at, c) in message.char_indices() {
        match open {
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    open = Some((c, at + c.len_utf8()));
                }
            }
            Some(('"', _)) if escaped => escaped = false,
            Some(('"', _)) if c == '\\' => escaped = true,
            Some((delimiter, start)) if c == delimiter => {
                out.push_str(&input_prefix(&message[start..at]));
                out.push(c);
                open = None;
            }
            Some(_) => {}
        }
    }
    if let Some((_, start)) = open {
        out.push_str(&input_prefix(&message[start..]));
    }
    clip_chars(&out, PARSER_MESSAGE_CHARS_MAX).into_owned()
}

fn clip_chars(text: &str, chars_max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(chars_max) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_quoted_whole() {
        assert_eq!(input_prefix("EUR"), "EUR");
        let exact = "a".repeat(QUOTED_INPUT_CHARS_MAX);
        assert_eq!(input_prefix(&exact), exact);
    }

    #[test]
    fn long_input_is_cut_to_its_prefix_on_a_char_boundary() {
        // Three-byte characters: a byte-based cut would split one and panic.
        let long = "€".repeat(10_000);
        let quoted = input_prefix(&long);
        assert_eq!(quoted.chars().count(), QUOTED_INPUT_CHARS_MAX + 1);
        assert!(quoted.ends_with('…'));
        assert!(long.starts_with(quoted.trim_end_matches('…')));
    }

    #[test]
    fn parser_messages_keep_their_words_and_clip_each_quoted_run() {
        let huge = "x".repeat(1 << 20);
        let message =
            format!("unknown field `{huge}`, expected one of `id`, `ledger` at line 1 column 9");
        let clipped = clip_parser_message(&message);
        assert!(clipped.starts_with("unknown field `xxxx"));
        assert!(clipped.ends_with("…`, expected one of `id`, `ledger` at line 1 column 9"));
        assert!(clipped.len() < 200, "{clipped}");

        let message = format!("invalid type: string \"{huge}\\\"{huge}\", expected u64");
        let clipped = clip_parser_message(&message);
        assert!(clipped.ends_with("…\", expected u64"), "{clipped}");
        assert!(clipped.len() < 200);
    }

    #[test]
    fn an_unterminated_or_unrecognised_echo_is_still_bounded() {
        let huge = "y".repeat(1 << 20);
        assert!(clip_parser_message(&format!("bad \"{huge}")).len() < 100);
        let bare = clip_parser_message(&huge);
        assert_eq!(bare.chars().count(), PARSER_MESSAGE_CHARS_MAX + 1);
    }
}
