//! Keeps credentials out of storage errors: URL passwords, `storage.options`
//! values and secret-looking cloud environment variables are replaced by `***`.

use std::collections::BTreeMap;

use url::Url;

/// The location as it may be shown: a password in the URL is replaced.
pub(super) fn redact_url(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            // Setting a password only fails for URLs without a host, which cannot have one.
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => text.to_string(),
        // Unparseable text may still hold `user:secret@`; keep only what precedes it.
        Err(_) => match text.find('@') {
            Some(at) => format!("{}…", &text[..text[..at].rfind(':').unwrap_or(at)]),
            None => text.to_string(),
        },
    }
}

/// Removes option values and secret-looking environment values from a message.
pub(super) fn redact(message: &str, options: &BTreeMap<String, String>) -> String {
    let env_secrets = std::env::vars()
        .filter(|(k, _)| is_secret_env(k))
        .map(|(_, v)| v);
    options
        .values()
        .cloned()
        .chain(env_secrets)
        // Very short values ("true", "1") would blank out ordinary words.
        .filter(|v| v.len() >= 6)
        .fold(message.to_string(), |msg, secret| {
            msg.replace(&secret, "***")
        })
}

fn is_secret_env(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["AWS_", "GOOGLE_", "AZURE_"]
        .iter()
        .any(|p| upper.starts_with(p))
        && ["SECRET", "KEY", "TOKEN", "SAS", "PASSWORD", "CREDENTIAL"]
            .iter()
            .any(|s| upper.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_password_is_masked_and_user_kept() {
        assert_eq!(
            redact_url("s3://key:hunter22@bucket/p"),
            "s3://key:***@bucket/p"
        );
        assert_eq!(redact_url("s3://u:hunter22@[bad/x"), "s3://u…");
        assert_eq!(redact_url("s3://bucket/p"), "s3://bucket/p");
    }

    #[test]
    fn option_values_are_masked_but_short_ones_kept() {
        let options = BTreeMap::from([
            ("aws_secret_access_key".to_string(), "hunter22".to_string()),
            ("aws_allow_http".to_string(), "true".to_string()),
        ]);
        assert_eq!(
            redact("bad \"hunter22\", true", &options),
            "bad \"***\", true"
        );
    }
}
