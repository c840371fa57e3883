//! `{name}` placeholders in paths and SQL.
//!
//! Paths and SQL files are templates: `{raw}`, `{warehouse}`, `{date}` and the job's
//! params are substituted at run time; `{{` and `}}` stand for literal braces. The
//! scanner keeps byte offsets so validation can point at a placeholder in its file
//! and map a SQL parser position back from the interpolated text.

use std::collections::BTreeMap;
use thiserror::Error;

/// Why a template could not be interpolated; `offset` is the byte offset in the template.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InterpolateError {
    /// `{name}` where `name` is neither a param nor a built-in variable.
    #[error("unknown placeholder `{{{name}}}`")]
    UnknownName { name: String, offset: usize },
    /// `{` with no closing `}`.
    #[error("unclosed `{{` (write `{{{{` for a literal brace)")]
    Unclosed { offset: usize },
    /// A lone `}`.
    #[error("unmatched `}}` (write `}}}}` for a literal brace)")]
    UnmatchedClose { offset: usize },
    /// `{…}` whose content is not a name of letters, digits and `_`.
    #[error("invalid placeholder `{{{text}}}`: a name is letters, digits and `_`")]
    InvalidName { text: String, offset: usize },
}

impl InterpolateError {
    /// Byte offset of the problem in the template.
    pub fn offset(&self) -> usize {
        match self {
            Self::UnknownName { offset, .. }
            | Self::Unclosed { offset }
            | Self::UnmatchedClose { offset }
            | Self::InvalidName { offset, .. } => *offset,
        }
    }
}

/// Replaces `{name}` with `vars[name]`; `{{` / `}}` are literal braces.
///
/// ```
/// # use std::collections::BTreeMap;
/// let vars = BTreeMap::from([("raw".to_string(), "s3://b/raw".to_string())]);
/// assert_eq!(c360::job::interpolate("{raw}/x{{1}}", &vars).unwrap(), "s3://b/raw/x{1}");
/// ```
pub fn interpolate(
    template: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, InterpolateError> {
    let mapped = interpolate_mapped(template, vars);
    match mapped.errors.into_iter().next() {
        Some(err) => Err(err),
        None => Ok(mapped.text),
    }
}

/// One stretch of output and the template bytes it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    pub template_start: usize,
    pub output_start: usize,
    pub output_len: usize,
    /// Copied verbatim, so offsets inside it map one to one.
    pub verbatim: bool,
}

/// Interpolated text, every problem found, and the map back to template offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapped {
    pub text: String,
    pub errors: Vec<InterpolateError>,
    pub pieces: Vec<Piece>,
}

impl Mapped {
    /// Maps a byte offset of the interpolated text back to the template.
    pub fn template_offset(&self, output_offset: usize) -> usize {
        let piece = self
            .pieces
            .iter()
            .rev()
            .find(|p| p.output_start <= output_offset);
        match piece {
            Some(p) if p.verbatim => p.template_start + (output_offset - p.output_start),
            Some(p) => p.template_start,
            None => 0,
        }
    }
}

/// Interpolates and keeps going past problems so all of them can be reported.
pub(crate) fn interpolate_mapped(template: &str, vars: &BTreeMap<String, String>) -> Mapped {
    let mut out = Mapped {
        text: String::with_capacity(template.len()),
        errors: Vec::new(),
        pieces: Vec::new(),
    };
    let bytes = template.as_bytes();
    let mut literal_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (replacement, consumed) = match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => (Some("{".to_string()), 2),
            b'}' if bytes.get(i + 1) == Some(&b'}') => (Some("}".to_string()), 2),
            b'}' => {
                out.errors
                    .push(InterpolateError::UnmatchedClose { offset: i });
                (None, 1)
            }
            b'{' => match template[i + 1..].find('}') {
                None => {
                    out.errors.push(InterpolateError::Unclosed { offset: i });
                    (None, bytes.len() - i)
                }
                Some(len) => {
                    let name = &template[i + 1..i + 1 + len];
                    (placeholder(name, i, vars, &mut out.errors), len + 2)
                }
            },
            _ => {
                i += 1;
                continue;
            }
        };
        push_piece(&mut out, template, literal_start, i, true, None);
        push_piece(&mut out, template, i, i + consumed, false, replacement);
        i += consumed;
        literal_start = i;
    }
    push_piece(&mut out, template, literal_start, bytes.len(), true, None);
    out
}

fn placeholder(
    name: &str,
    offset: usize,
    vars: &BTreeMap<String, String>,
    errors: &mut Vec<InterpolateError>,
) -> Option<String> {
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        errors.push(InterpolateError::InvalidName {
            text: name.to_string(),
            offset,
        });
        return None;
    }
    match vars.get(name) {
        Some(value) => Some(value.clone()),
        None => {
            errors.push(InterpolateError::UnknownName {
                name: name.to_string(),
                offset,
            });
            None
        }
    }
}

/// Appends template[start..end] (verbatim) or `replacement`; a failed placeholder is kept
/// as written so the rest of the text still lines up.
fn push_piece(
    out: &mut Mapped,
    template: &str,
    start: usize,
    end: usize,
    verbatim: bool,
    replacement: Option<String>,
) {
    if start >= end {
        return;
    }
    let text = replacement.unwrap_or_else(|| template[start..end].to_string());
    out.pieces.push(Piece {
        template_start: start,
        output_start: out.text.len(),
        output_len: text.len(),
        verbatim: verbatim || text.len() == end - start,
    });
    out.text.push_str(&text);
}

/// Where `line:column` of `template` as interpolated with `vars` comes from in
/// `template` itself (1-based): problems found in the SQL DataFusion planned point
/// at the file the user edits.
pub fn template_position(
    template: &str,
    vars: &BTreeMap<String, String>,
    line: u32,
    column: u32,
) -> (u32, u32) {
    let mapped = interpolate_mapped(template, vars);
    let offset = mapped.template_offset(byte_offset(&mapped.text, line, column));
    line_col(template, offset)
}

/// 1-based line and character column of a byte offset in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// Byte offset of a 1-based line and character column in `text` (clamped to the text).
pub(crate) fn byte_offset(text: &str, line: u32, column: u32) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let rest = &text[start..];
    let skip = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
    start + rest.char_indices().nth(skip).map_or(rest.len(), |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("raw".to_string(), "s3://bucket/raw".to_string()),
            ("cur".to_string(), "EUR".to_string()),
        ])
    }

    #[test]
    fn substitutes_names_and_escapes() {
        assert_eq!(
            interpolate("{raw}/fx.csv where c = '{cur}' {{x}}", &vars()).unwrap(),
            "s3://bucket/raw/fx.csv where c = 'EUR' {x}"
        );
        assert_eq!(interpolate("", &vars()).unwrap(), "");
        assert_eq!(interpolate("{{}}", &vars()).unwrap(), "{}");
    }

    #[test]
    fn unknown_name_is_named_with_offset() {
        assert_eq!(
            interpolate("ab{nope}", &vars()),
            Err(InterpolateError::UnknownName {
                name: "nope".into(),
                offset: 2
            })
        );
        assert_eq!(
            InterpolateError::UnknownName {
                name: "nope".into(),
                offset: 2
            }
            .to_string(),
            "unknown placeholder `{nope}`"
        );
    }

    #[test]
    fn brace_errors() {
        assert_eq!(
            interpolate("a{raw", &vars()),
            Err(InterpolateError::Unclosed { offset: 1 })
        );
        assert_eq!(
            interpolate("a}b", &vars()),
            Err(InterpolateError::UnmatchedClose { offset: 1 })
        );
        assert_eq!(
            interpolate("x{5 }", &vars()),
            Err(InterpolateError::InvalidName {
                text: "5 ".into(),
                offset: 1
            })
        );
    }

    #[test]
    fn mapped_reports_every_problem_and_maps_offsets() {
        let mapped = interpolate_mapped("{cur}{a}\nx{b}y", &vars());
        assert_eq!(mapped.text, "EUR{a}\nx{b}y");
        assert_eq!(mapped.errors.len(), 2);
        // 'x' is at output 7 and template 9; 'y' at output 11 and template 13.
        assert_eq!(mapped.template_offset(7), 9);
        assert_eq!(mapped.template_offset(11), 13);
        // Inside the substituted value, the placeholder start.
        assert_eq!(mapped.template_offset(1), 0);
    }

    #[test]
    fn line_col_and_back() {
        let text = "ab\nçd\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 5), (2, 2));
        assert_eq!(byte_offset(text, 2, 2), 5);
        assert_eq!(byte_offset(text, 9, 1), text.len());
    }
}
