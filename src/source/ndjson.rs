//! NDJSON files: one JSON object per line.
//!
//! Values map to contract text as the contract says: strings as they are, numbers
//! and booleans by their JSON text, `null` as missing. A line that is not valid
//! JSON, or valid JSON but not an object, is `broken_json`. Blank lines are not
//! rows: they are skipped without a reject (a trailing newline at the end of a
//! file is common and carries no data), but they still count as physical lines.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};

use serde_json::Value as Json;

use super::error::SourceError;
use super::reject::Reason;
use super::rows::{FileRows, FileStats, Output};

/// Reads one decompressed NDJSON file through `rows`, handing full batches to `emit`.
pub(crate) fn read_ndjson(
    reader: impl Read,
    mut rows: FileRows,
    path: &str,
    emit: &mut dyn FnMut(Output) -> Result<(), SourceError>,
) -> Result<FileStats, SourceError> {
    let contract = rows.contract();
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    let mut line: i64 = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| SourceError::Read {
                file: path.to_string(),
                source,
            })?;
        if n == 0 {
            break;
        }
        line += 1;
        let mut text: &[u8] = &buf;
        if let Some(rest) = text.strip_suffix(b"\n") {
            text = rest;
        }
        if let Some(rest) = text.strip_suffix(b"\r") {
            text = rest;
        }
        if line == 1 {
            text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
        }
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let raw = || Some(String::from_utf8_lossy(text).into_owned());
        let object = match serde_json::from_slice::<Json>(text) {
            Ok(Json::Object(map)) => map,
            _ => {
                rows.reject(line, Reason::BrokenJson, raw().as_deref());
                continue;
            }
        };
        let unknown: Vec<&String> = object
            .keys()
            .filter(|k| !contract.fields.iter().any(|f| f.name == k.as_str()))
            .collect();
        rows.stats.unknown_fields += unknown.len() as u64;
        for name in unknown {
            rows.stats.extra_columns.insert(name.clone());
        }
        let owned: Vec<Option<Cow<'_, str>>> = contract
            .fields
            .iter()
            .map(|f| object.get(f.name).and_then(json_text))
            .collect();
        let values: Vec<Option<&str>> = owned.iter().map(|v| v.as_deref()).collect();
        rows.push(&values, line, raw);
        while let Some(batch) = rows.take_ready() {
            emit(batch)?;
        }
    }
    let (rest, stats) = rows.finish();
    for batch in rest {
        emit(batch)?;
    }
    Ok(stats)
}

/// The contract text of a JSON value; `null` is missing.
fn json_text(value: &Json) -> Option<Cow<'_, str>> {
    match value {
        Json::Null => None,
        Json::String(s) => Some(Cow::Borrowed(s)),
        // Numbers and booleans by their JSON text; arrays and objects too, so that a
        // nested value in a typed field fails its check instead of vanishing.
        other => Some(Cow::Owned(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_become_contract_text() {
        assert_eq!(json_text(&Json::Null), None);
        assert_eq!(json_text(&serde_json::json!("a b")).as_deref(), Some("a b"));
        assert_eq!(json_text(&serde_json::json!(12.5)).as_deref(), Some("12.5"));
        assert_eq!(json_text(&serde_json::json!(3)).as_deref(), Some("3"));
        assert_eq!(json_text(&serde_json::json!(true)).as_deref(), Some("true"));
        assert_eq!(json_text(&serde_json::json!([1])).as_deref(), Some("[1]"));
    }
}
