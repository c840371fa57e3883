//! NDJSON files: one JSON object per line.
//!
//! Values map to contract text as the contract says: strings as they are, numbers
//! and booleans by their JSON text, `null` as missing. A line that is not valid
//! JSON, or valid JSON but not an object, is `broken_json`. Blank lines are not
//! rows: they are skipped without a reject (a trailing newline at the end of a
//! file is common and carries no data), but they still count as physical lines.
//!
//! Hostile lines stay cheap (docs/rules.md, "Hostile input"): a line longer than
//! `limits.max_record_bytes` is `record_too_large`, read past without being held
//! (only a prefix is kept, for its `raw`); an object with more than
//! `limits.max_columns` fields is `record_too_large` too; nesting deeper than
//! serde_json's limit (128) is `broken_json`. Unknown field names are collected
//! for the run log up to `max_columns` per file, and counted beyond.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value as Json;

use super::error::SourceError;
use super::reject::Reason;
use super::rows::{FileRows, FileStats, Output};
use super::schema::FieldSpec;

/// Reads one decompressed NDJSON file through `rows`, handing full batches to `emit`.
pub(crate) fn read_ndjson(
    reader: impl Read,
    mut rows: FileRows,
    path: &str,
    emit: &mut dyn FnMut(Output) -> Result<(), SourceError>,
) -> Result<FileStats, SourceError> {
    let contract = rows.contract();
    let limits = rows.limits();
    let max_record = usize::try_from(limits.max_record_bytes).unwrap_or(usize::MAX);
    let max_fields = usize::try_from(limits.max_columns).unwrap_or(usize::MAX);
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let mut buf = Vec::new();
    let mut line: i64 = 0;
    loop {
        if !rows.wants(line + 1) {
            // Passed over unread: not even copied out of the buffer.
            let skipped = reader.skip_until(b'\n');
            let n = skipped.map_err(|source| super::decode::read_error(path, source))?;
            if n == 0 {
                break;
            }
            line += 1;
            continue;
        }
        buf.clear();
        let (n, cut) = read_line(&mut reader, &mut buf, max_record)
            .map_err(|source| super::decode::read_error(path, source))?;
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
        if cut || text.len() > max_record {
            // `text` is the line's first bytes only; the reject keeps a prefix of them.
            let prefix = &text[..text.len().min(super::reject::RAW_PREFIX_BYTES)];
            let prefix = String::from_utf8_lossy(prefix);
            rows.reject(line, Reason::RecordTooLarge, Some(&prefix));
            continue;
        }
        // The text of each contract field, borrowed from the line where JSON
        // needs no unescaping; the names of unknown fields.
        let mut values: Vec<Option<Cow<'_, str>>> = vec![None; contract.fields.len()];
        let mut unknown: Vec<Cow<'_, str>> = Vec::new();
        let mut too_many_fields = false;
        let row = RowSeed {
            fields: contract.fields,
            values: &mut values,
            unknown: &mut unknown,
            max_fields,
            too_many_fields: &mut too_many_fields,
        };
        let mut json = serde_json::Deserializer::from_slice(text);
        if row
            .deserialize(&mut json)
            .and_then(|()| json.end())
            .is_err()
        {
            let reason = if too_many_fields {
                Reason::RecordTooLarge
            } else {
                Reason::BrokenJson
            };
            rows.reject(line, reason, raw().as_deref());
            continue;
        }
        rows.stats.unknown_fields += unknown.len() as u64;
        for name in &unknown {
            // Bounded: a file of lines with ever new keys must not grow the run log.
            if rows.stats.extra_columns.len() < max_fields
                && !rows.stats.extra_columns.contains(name.as_ref())
            {
                rows.stats.extra_columns.insert(name.to_string());
            }
        }
        let values: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
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

/// Reads one line (up to and with its `\n`) into `buf`, keeping at most
/// `max_text + 2` bytes (the text and a CRLF); the rest of a longer line is read
/// past, not held. Returns the bytes the line took in the file (0 at the end)
/// and whether it was cut.
fn read_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max_text: usize,
) -> std::io::Result<(usize, bool)> {
    let keep = max_text.saturating_add(2);
    let n = reader
        .by_ref()
        .take(u64::try_from(keep).unwrap_or(u64::MAX))
        .read_until(b'\n', buf)?;
    if n < keep || buf.ends_with(b"\n") {
        return Ok((n, false));
    }
    let rest = reader.skip_until(b'\n')?;
    Ok((n + rest, rest > 0))
}

/// Decodes one line's object straight into the contract fields' text, without
/// building a `serde_json::Value` map per line: strings without escapes stay
/// borrowed from the line. Anything but an object is an error (`broken_json`).
/// A repeated key keeps its last value, as a JSON map would. More than
/// `max_fields` keys stop the decoding and set `too_many_fields`.
struct RowSeed<'a, 'de> {
    fields: &'static [FieldSpec],
    values: &'a mut Vec<Option<Cow<'de, str>>>,
    unknown: &'a mut Vec<Cow<'de, str>>,
    max_fields: usize,
    too_many_fields: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = 0usize;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            keys += 1;
            if keys > self.max_fields {
                *self.too_many_fields = true;
                return Err(de::Error::custom("too many fields"));
            }
            match self.fields.iter().position(|f| f.name == key.as_ref()) {
                Some(i) => self.values[i] = map.next_value::<FieldText<'de>>()?.0,
                None => {
                    map.next_value::<IgnoredAny>()?;
                    if !self.unknown.contains(&key) {
                        self.unknown.push(key);
                    }
                }
            }
        }
        Ok(())
    }
}

/// A JSON string, borrowed when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// A field's value as contract text ([`json_text`]): strings as they are
/// (borrowed when possible), anything else through `serde_json::Value`.
struct FieldText<'de>(Option<Cow<'de, str>>);

impl<'de> de::Deserialize<'de> for FieldText<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FieldText<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(FieldText(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldText(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(FieldText(None))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(other(Json::from(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(other(Json::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(other(Json::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(other(Json::from(v)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let value =
                    de::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(other(value))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let value =
                    de::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(other(value))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A non-string value's contract text.
fn other(value: Json) -> FieldText<'static> {
    FieldText(json_text(&value).map(|text| Cow::Owned(text.into_owned())))
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

    /// The decoded text per communications field and the unknown names, or
    /// `None` for a `broken_json` line.
    fn decode(line: &str) -> Option<(Vec<Option<String>>, Vec<String>)> {
        let fields =
            super::super::contract_fields(crate::job::ContractSchema::Communications).fields;
        let mut values = vec![None; fields.len()];
        let mut unknown = Vec::new();
        let seed = RowSeed {
            fields,
            values: &mut values,
            unknown: &mut unknown,
            max_fields: 1000,
            too_many_fields: &mut false,
        };
        let mut json = serde_json::Deserializer::from_slice(line.as_bytes());
        seed.deserialize(&mut json).and_then(|()| json.end()).ok()?;
        let text = values
            .into_iter()
            .map(|v| v.map(|t| t.into_owned()))
            .collect();
        Some((text, unknown.into_iter().map(|u| u.into_owned()).collect()))
    }

    #[test]
    fn lines_decode_into_the_contract_fields() {
        // event_id (0), email (3), cost (9): escapes undone, numbers by their JSON
        // text, a repeated key keeps its last value, null is missing.
        let (text, unknown) = decode(
            r#"{"event_id":"E\u00e91","email":null,"cost":12.50,"x":[1,{"y":2}],"event_id":"E2","x":3,"cost":7}"#,
        )
        .unwrap();
        assert_eq!(text[0].as_deref(), Some("E2"));
        assert_eq!(text[3], None);
        assert_eq!(text[9].as_deref(), Some("7"));
        assert_eq!(unknown, vec!["x".to_string()]);
        let (text, _) =
            decode(r#"{"event_id":"E\u00e91","cost":12.50,"channel":{"a":[true]}}"#).unwrap();
        assert_eq!(text[0].as_deref(), Some("E\u{e9}1"));
        assert_eq!(text[9].as_deref(), Some("12.5"));
        assert_eq!(text[4].as_deref(), Some(r#"{"a":[true]}"#));
        // Not an object, or trailing text: broken JSON.
        assert!(decode(r#"["E3"]"#).is_none());
        assert!(decode(r#"{"event_id":"E4"} x"#).is_none());
        assert!(decode(r#"{"event_id":"E5""#).is_none());
    }

    /// The lines of the accepted rows and those of the rejects of `file`, read
    /// through `only_lines`.
    fn read_lines(file: &str, only: Option<&[i64]>) -> (Vec<i64>, Vec<i64>) {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::Int64Type;
        let ctx = super::super::rows::FileContext {
            extract: "communications".into(),
            file: "c.ndjson".into(),
            schema: crate::job::ContractSchema::Communications,
            currencies: None,
            batch_rows: 2,
            limits: crate::job::SourceLimits::default(),
            only_lines: only.map(|l| std::sync::Arc::new(l.iter().copied().collect())),
        };
        let rows = FileRows::new(ctx).unwrap();
        let (mut accepted, mut rejected) = (Vec::new(), Vec::new());
        read_ndjson(file.as_bytes(), rows, "c.ndjson", &mut |out| {
            let (batch, into, column) = match out {
                Output::Accepted(b) => (b, &mut accepted, "_line"),
                Output::Rejected(b) => (b, &mut rejected, "line"),
            };
            let lines = batch.column_by_name(column).unwrap();
            into.extend(lines.as_primitive::<Int64Type>().values().iter().copied());
            Ok(())
        })
        .unwrap();
        (accepted, rejected)
    }

    #[test]
    fn reading_some_lines_gives_exactly_those_records_of_a_whole_read() {
        let ok = r#"{"event_id":"E1","source_system":"crm","source_customer_id":"C1","channel":"email","direction":"outbound","event_type":"sent","event_ts":"2026-01-03T15:46:03+00:00"}"#;
        let file = format!("{ok}\n\n{{broken\r\n{ok}\n   \n{ok}");
        assert_eq!(read_lines(&file, None), (vec![1, 4, 6], vec![3]));
        assert_eq!(read_lines(&file, Some(&[2, 3, 6])), (vec![6], vec![3]));
        assert_eq!(read_lines(&file, Some(&[4, 9])), (vec![4], vec![]));
    }

    #[test]
    fn nesting_past_serde_jsons_limit_is_broken_json_not_a_stack_overflow() {
        let deep = format!(
            r#"{{"event_id":{}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(decode(&deep).is_none());
        // Within the limit a nested value is text (and fails its field's check).
        let shallow = format!(r#"{{"x":{}1{}}}"#, "[".repeat(100), "]".repeat(100));
        assert!(decode(&shallow).is_some());
    }

    #[test]
    fn a_line_over_the_limit_is_read_past_and_cut() {
        let file = format!("{}\nab\r\n{}", "x".repeat(50), "y".repeat(7));
        let mut reader = BufReader::with_capacity(8, file.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf, 5).unwrap(), (51, true));
        assert_eq!(buf, b"xxxxxxx");
        buf.clear();
        assert_eq!(read_line(&mut reader, &mut buf, 5).unwrap(), (4, false));
        assert_eq!(buf, b"ab\r\n");
        buf.clear();
        // The last line, without a line break, is cut too.
        assert_eq!(read_line(&mut reader, &mut buf, 5).unwrap(), (7, false));
        assert_eq!(buf.len(), 7);
    }

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
