//! One-line, credential-free descriptions of object store errors. A failed S3
//! request's error carries the server's XML body across several lines; a log line
//! or the `error:` line of the CLI should say what went wrong in one line, e.g.
//! `403 Forbidden: InvalidAccessKeyId: The AWS Access Key Id you provided …`.

use std::collections::BTreeMap;

use super::redact::redact;

/// `error` as one line: an XML error body is reduced to its `Code: Message`,
/// whitespace runs (newlines included) become one space, secrets are masked.
pub fn describe(error: &object_store::Error) -> String {
    one_line(&error.to_string())
}

/// [`describe`] for any message text.
pub fn one_line(message: &str) -> String {
    let condensed = match message.find("<?xml").or_else(|| message.find("<Error>")) {
        Some(start) => {
            let body = &message[start..];
            let field = |tag: &str| {
                let open = format!("<{tag}>");
                let close = format!("</{tag}>");
                let from = body.find(&open)? + open.len();
                let len = body[from..].find(&close)?;
                Some(body[from..from + len].to_string())
            };
            let summary = match (field("Code"), field("Message")) {
                (Some(code), Some(text)) => format!("{code}: {text}"),
                (Some(code), None) => code,
                (None, Some(text)) => text,
                (None, None) => "(unreadable error body)".into(),
            };
            format!("{}{summary}", &message[..start])
        }
        None => message.to_string(),
    };
    let single = condensed.split_whitespace().collect::<Vec<_>>().join(" ");
    redact(&single, &BTreeMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_xml_body_becomes_code_and_message_on_one_line() {
        let raw = "Error performing PUT http://h/b/k in 8ms - Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Error><Code>InvalidAccessKeyId</Code><Message>No such key.</Message><RequestId>x</RequestId></Error>";
        assert_eq!(
            one_line(raw),
            "Error performing PUT http://h/b/k in 8ms - Server returned non-2xx status code: 403 Forbidden: InvalidAccessKeyId: No such key."
        );
    }

    #[test]
    fn plain_messages_only_lose_line_breaks() {
        assert_eq!(
            one_line("HTTP error:\n  error sending request"),
            "HTTP error: error sending request"
        );
    }
}
