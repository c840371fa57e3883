//! Emails that look like a placeholder typed in for many different people
//! (`noemail@store.com`, `none@shop.de`, `n.a@…`). The cap
//! (`max_records_per_identifier`) catches a placeholder on many source records;
//! one that only guest orders carry is not capped, because a guest's own orders
//! merge nobody (DATA_CONTRACT.md, "Identifiers"). Such an email still links, and
//! the run reports it as a warning with its counts, so that a user who knows it is a
//! placeholder adds it to `exclude_identifiers` (docs/rules.md, "Unified customer view").
//! Nothing is dropped on a guess.

/// Local parts (lower case, with `.`, `-`, `_` and `+` removed) that name no person.
const PLACEHOLDER_LOCAL_PARTS: &[&str] = &[
    "noemail",
    "nomail",
    "noemailaddress",
    "noaddress",
    "none",
    "na",
    "nil",
    "null",
    "unknown",
    "notprovided",
    "notgiven",
    "declined",
    "refused",
    "noreply",
    "donotreply",
    "dontreply",
    "nospam",
    "test",
    "guest",
    "customer",
    "email",
    "abc",
    "asdf",
];

/// Whether a normalised email looks like a shared placeholder: its local part is a
/// word from the list above, or one character repeated (`x@`, `xxx@`, `000@`).
pub fn looks_like_placeholder(email: &str) -> bool {
    let Some((local, _domain)) = email.split_once('@') else {
        return false;
    };
    let word: String = local
        .chars()
        .filter(|c| !matches!(c, '.' | '-' | '_' | '+'))
        .collect();
    let mut chars = word.chars();
    let repeated = chars.next().is_some_and(|first| chars.all(|c| c == first));
    repeated || PLACEHOLDER_LOCAL_PARTS.contains(&word.as_str())
}

#[cfg(test)]
mod tests {
    use super::looks_like_placeholder;

    #[test]
    fn placeholder_words_and_repeated_characters_are_flagged_people_are_not() {
        for email in [
            "noemail@store.com",
            "no-email@store.com",
            "none@shop.de",
            "n.a@x.com",
            "do_not_reply@x.com",
            "xxx@x.com",
            "0000@x.com",
        ] {
            assert!(looks_like_placeholder(email), "{email}");
        }
        for email in [
            "daan.obrien203835@outlook.com",
            "nonex@x.com",
            "anna@x.com",
            "x1@x.com",
            "not-an-email",
        ] {
            assert!(!looks_like_placeholder(email), "{email}");
        }
    }
}
