//! Day files of one extract: CSV or NDJSON text, optionally with a byte-order
//! mark, CRLF line ends, gzip or zstd, split into parts so that one part (not a
//! whole day, never the whole dataset) is buffered. The writer tracks the
//! physical line of every record the way the contract numbers rejects: 1-based
//! lines of the decompressed file, header = line 1, and a quoted field with a
//! line break pushes every later record down.

use std::io::Write;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::GenerateError;

/// Compression of a raw file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Plain,
    Gzip,
    Zstd,
}

impl Encoding {
    fn suffix(self) -> &'static str {
        match self {
            Encoding::Plain => "",
            Encoding::Gzip => ".gz",
            Encoding::Zstd => ".zst",
        }
    }
}

/// How one day's files of an extract look on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStyle {
    pub encoding: Encoding,
    pub crlf: bool,
    pub bom: bool,
}

impl FileStyle {
    /// Plain UTF-8, LF line ends, no BOM.
    pub const PLAIN: FileStyle = FileStyle {
        encoding: Encoding::Plain,
        crlf: false,
        bom: false,
    };
}

/// A file that was written, relative to the raw root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub path: String,
    pub rows: u64,
}

/// Writes the files of one extract day, `<dir>/part-NNNN.<ext>[.gz|.zst]`.
pub struct DayFileWriter {
    store: Arc<dyn ObjectStore>,
    root: Path,
    dir: String,
    ext: &'static str,
    header: Option<String>,
    style: FileStyle,
    max_rows: u64,
    part: u32,
    buf: String,
    next_line: u64,
    rows_in_part: u64,
    files: Vec<GeneratedFile>,
}

impl DayFileWriter {
    /// A CSV day writer; `header` is written at the top of every part.
    pub fn csv(
        store: Arc<dyn ObjectStore>,
        root: &Path,
        dir: String,
        header: &[&str],
        style: FileStyle,
        max_rows: u64,
    ) -> Self {
        let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
        let mut w = Self::new(store, root, dir, "csv", style, max_rows);
        w.header = Some(render_csv(&header, style.crlf));
        w.start_part();
        w
    }

    /// An NDJSON day writer.
    pub fn ndjson(
        store: Arc<dyn ObjectStore>,
        root: &Path,
        dir: String,
        style: FileStyle,
        max_rows: u64,
    ) -> Self {
        let mut w = Self::new(store, root, dir, "ndjson", style, max_rows);
        w.start_part();
        w
    }

    fn new(
        store: Arc<dyn ObjectStore>,
        root: &Path,
        dir: String,
        ext: &'static str,
        style: FileStyle,
        max_rows: u64,
    ) -> Self {
        Self {
            store,
            root: root.clone(),
            dir,
            ext,
            header: None,
            style,
            max_rows: max_rows.max(1),
            part: 0,
            buf: String::new(),
            next_line: 1,
            rows_in_part: 0,
            files: Vec::new(),
        }
    }

    fn start_part(&mut self) {
        self.buf.clear();
        self.next_line = 1;
        self.rows_in_part = 0;
        if self.style.bom {
            self.buf.push('\u{feff}');
        }
        if let Some(header) = &self.header {
            self.buf.push_str(header);
            self.next_line += count_newlines(header);
        }
    }

    /// Path of the part the next record lands in, relative to the root.
    pub fn current_file(&self) -> String {
        format!(
            "{}/part-{:04}.{}{}",
            self.dir,
            self.part,
            self.ext,
            self.style.encoding.suffix()
        )
    }

    /// Appends a CSV record; returns the physical line it starts on.
    pub async fn push_csv(&mut self, fields: &[String]) -> Result<u64, GenerateError> {
        let text = render_csv(fields, self.style.crlf);
        self.push_text(&text).await
    }

    /// Appends one NDJSON line (without terminator); returns its line number.
    pub async fn push_json(&mut self, line: &str) -> Result<u64, GenerateError> {
        let mut text = String::with_capacity(line.len() + 2);
        text.push_str(line);
        text.push_str(if self.style.crlf { "\r\n" } else { "\n" });
        self.push_text(&text).await
    }

    async fn push_text(&mut self, text: &str) -> Result<u64, GenerateError> {
        if self.rows_in_part >= self.max_rows {
            self.flush_part().await?;
            self.part += 1;
            self.start_part();
        }
        let line = self.next_line;
        self.buf.push_str(text);
        self.next_line += count_newlines(text);
        self.rows_in_part += 1;
        Ok(line)
    }

    async fn flush_part(&mut self) -> Result<(), GenerateError> {
        let rel = self.current_file();
        let bytes = encode(self.buf.as_bytes(), self.style.encoding).map_err(|source| {
            GenerateError::Encode {
                path: rel.clone(),
                source,
            }
        })?;
        put(&self.store, &self.root, &rel, bytes).await?;
        self.files.push(GeneratedFile {
            path: rel,
            rows: self.rows_in_part,
        });
        Ok(())
    }

    /// Writes the last part (a header-only file if the day had no rows).
    pub async fn finish(mut self) -> Result<Vec<GeneratedFile>, GenerateError> {
        if self.rows_in_part > 0 || self.part == 0 {
            self.flush_part().await?;
        }
        Ok(self.files)
    }
}

/// Stores `bytes` at `root/rel`.
pub async fn put(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    rel: &str,
    bytes: Vec<u8>,
) -> Result<(), GenerateError> {
    let path = join(root, rel);
    store
        .put(&path, PutPayload::from(bytes))
        .await
        .map_err(|source| GenerateError::Store {
            path: rel.to_string(),
            source,
        })?;
    Ok(())
}

/// `root` joined with a relative `a/b/c` path.
pub fn join(root: &Path, rel: &str) -> Path {
    rel.split('/').fold(root.clone(), |p, part| p.join(part))
}

fn encode(bytes: &[u8], encoding: Encoding) -> std::io::Result<Vec<u8>> {
    match encoding {
        Encoding::Plain => Ok(bytes.to_vec()),
        Encoding::Gzip => {
            // GzEncoder writes mtime 0 and no file name: same input, same bytes.
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(bytes)?;
            enc.finish()
        }
        Encoding::Zstd => zstd::stream::encode_all(bytes, 3),
    }
}

fn count_newlines(text: &str) -> u64 {
    text.bytes().filter(|b| *b == b'\n').count() as u64
}

/// One CSV record with `"` quoting where a field needs it, plus the line end.
pub fn render_csv(fields: &[String], crlf: bool) -> String {
    let mut out = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push_str(if crlf { "\r\n" } else { "\n" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_commas_quotes_and_line_breaks_only() {
        let fields = vec![
            "Smith, Jr.".to_string(),
            "Robert \"Bob\"".to_string(),
            "Flat 2\nLondon".to_string(),
            " a@b.com ".to_string(),
        ];
        assert_eq!(
            render_csv(&fields, true),
            "\"Smith, Jr.\",\"Robert \"\"Bob\"\"\",\"Flat 2\nLondon\", a@b.com \r\n"
        );
    }

    #[tokio::test]
    async fn line_numbers_follow_embedded_line_breaks_and_parts_restart_them() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let root = Path::from("raw");
        let mut w = DayFileWriter::csv(
            store.clone(),
            &root,
            "x/dt=2026-01-01".into(),
            &["a", "b"],
            FileStyle::PLAIN,
            3,
        );
        let one = |s: &str| vec![s.to_string(), "v".to_string()];
        assert_eq!(w.push_csv(&one("r1")).await.ok(), Some(2));
        assert_eq!(w.push_csv(&one("two\nlines")).await.ok(), Some(3));
        assert_eq!(w.push_csv(&one("r3")).await.ok(), Some(5));
        // The fourth row opens part 1, which starts again with its header.
        assert_eq!(w.push_csv(&one("r4")).await.ok(), Some(2));
        assert_eq!(w.current_file(), "x/dt=2026-01-01/part-0001.csv");
        let files = w.finish().await.unwrap_or_default();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].rows, 3);
        let got = store
            .get(&join(&root, "x/dt=2026-01-01/part-0000.csv"))
            .await;
        let bytes = match got {
            Ok(g) => g.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            Err(e) => panic!("part 0 missing: {e}"),
        };
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            "a,b\nr1,v\n\"two\nlines\",v\nr3,v\n"
        );
    }

    #[tokio::test]
    async fn empty_day_still_writes_a_header_only_file() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let w = DayFileWriter::csv(
            store,
            &Path::from("r"),
            "t/dt=2026-01-05".into(),
            &["a"],
            FileStyle::PLAIN,
            10,
        );
        let files = w.finish().await.unwrap_or_default();
        assert_eq!(
            files,
            vec![GeneratedFile {
                path: "t/dt=2026-01-05/part-0000.csv".into(),
                rows: 0
            }]
        );
    }
}
