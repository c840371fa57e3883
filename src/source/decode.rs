//! Turning a raw object into a decompressed byte reader.
//!
//! An object of up to [`WHOLE_OBJECT_BYTES`] (a day's extract file, typically) is
//! fetched in one request and read from memory; a larger one is streamed from the
//! store and bridged to a blocking `std::io::Read`. Either way the CSV and NDJSON
//! parsers run on a blocking thread while the async side keeps writing batches.
//! (Streaming a local file costs one blocking-pool task per 8 KiB chunk in
//! object_store; at 200k customers the sources stage spent about a quarter of
//! its CPU samples in the kernel, mostly the scheduler, handing those off.)
//!
//! The decompressed stream is capped at the source's `max_decompressed_bytes`
//! ([`Capped`]): a small file that expands without bound (a gzip or zstd bomb)
//! stops there with [`SourceError::OverLimit`], in bounded memory, since the
//! decoders stream.

use std::io::{self, BufReader, Cursor, Read};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::error::{SourceError, human_bytes};
use super::layout::{Codec, RawFile};

/// Raw objects up to this size (compressed, as stored) are fetched whole.
pub(crate) const WHOLE_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

/// A blocking reader of the object's bytes as stored. Must be called inside the
/// runtime, and the reader used only from a blocking thread.
pub(crate) async fn open_object(
    store: &Arc<dyn ObjectStore>,
    file: &RawFile,
) -> Result<Box<dyn Read + Send>, SourceError> {
    let read_err = |e: object_store::Error| SourceError::Read {
        file: file.path.to_string(),
        source: io::Error::other(e),
    };
    let result = store.get(&file.path).await.map_err(read_err)?;
    if file.size <= WHOLE_OBJECT_BYTES {
        let bytes = result.bytes().await.map_err(read_err)?;
        return Ok(Box::new(Cursor::new(bytes)));
    }
    let stream = result.into_stream().map_err(io::Error::other);
    Ok(Box::new(SyncIoBridge::new(StreamReader::new(stream))))
}

/// Wraps `reader` in the streaming decoder its compression needs, failing reads
/// once more than `max_bytes` came out (see [`read_error`]).
pub(crate) fn decompress<'r>(
    reader: impl Read + Send + 'r,
    compression: Codec,
    max_bytes: u64,
) -> io::Result<Box<dyn Read + Send + 'r>> {
    let decoded: Box<dyn Read + Send + 'r> = match compression {
        Codec::None => Box::new(reader),
        // Multi-member: `cat a.gz b.gz` is a valid gzip file and must be read whole.
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(reader))),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    };
    Ok(Box::new(Capped {
        inner: decoded,
        left: max_bytes,
        limit: max_bytes,
    }))
}

/// The error a [`Capped`] read carries inside its `io::Error`.
#[derive(Debug, thiserror::Error)]
#[error("holds more than {} once decompressed", human_bytes(*limit))]
pub(crate) struct DecompressedTooLarge {
    limit: u64,
}

/// A reader that yields at most `limit` bytes and then fails, rather than
/// ending quietly: a cut-off file must not pass for a complete one.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // Exactly `limit` bytes is within the limit: fail only if more follow.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    DecompressedTooLarge { limit: self.limit },
                )),
            };
        }
        let room = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(out.len());
        let n = self.inner.read(&mut out[..room])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The source error of a failed read of decompressed bytes from `file`: over
/// the decompressed limit, or an I/O or decoding error.
pub(crate) fn read_error(file: &str, source: io::Error) -> SourceError {
    match source
        .get_ref()
        .and_then(|e| e.downcast_ref::<DecompressedTooLarge>())
    {
        Some(too_large) => SourceError::OverLimit {
            at: file.to_string(),
            what: too_large.to_string(),
            limit: "max_decompressed_bytes",
        },
        None => SourceError::Read {
            file: file.to_string(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(r: &mut dyn Read) -> String {
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn gzip_members_are_concatenated() {
        let mut bytes = Vec::new();
        for part in ["a,b\n", "1,2\n"] {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(part.as_bytes()).unwrap();
            bytes.extend(enc.finish().unwrap());
        }
        let mut r = decompress(&bytes[..], Codec::Gzip, u64::MAX).unwrap();
        assert_eq!(read_all(&mut r), "a,b\n1,2\n");
    }

    #[test]
    fn zstd_round_trips() {
        let bytes = zstd::encode_all(&b"x\ny\n"[..], 3).unwrap();
        let mut r = decompress(&bytes[..], Codec::Zstd, u64::MAX).unwrap();
        assert_eq!(read_all(&mut r), "x\ny\n");
    }

    #[test]
    fn a_zstd_bomb_stops_at_the_limit_naming_it() {
        // 64 MiB of zeros compress to a few KiB; the limit is 1 MiB.
        let zeros = io::repeat(0).take(64 << 20);
        let bomb = zstd::encode_all(zeros, 3).unwrap();
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let mut r = decompress(&bomb[..], Codec::Zstd, 1 << 20).unwrap();
        let err = io::copy(&mut r, &mut io::sink()).unwrap_err();
        let err = read_error("raw/x.csv.zst", err);
        assert_eq!(
            err.to_string(),
            "raw/x.csv.zst: holds more than 1 MiB once decompressed, the source's limits.max_decompressed_bytes"
        );
    }

    #[test]
    fn exactly_the_limit_is_within_it() {
        let mut r = decompress(&b"abcd"[..], Codec::None, 4).unwrap();
        assert_eq!(read_all(&mut r), "abcd");
        let mut r = decompress(&b"abcde"[..], Codec::None, 4).unwrap();
        assert!(r.read_to_string(&mut String::new()).is_err());
    }

    #[test]
    fn corrupt_gzip_is_an_io_error() {
        let mut r = decompress(&b"not gzip at all"[..], Codec::Gzip, u64::MAX).unwrap();
        let mut s = String::new();
        assert!(r.read_to_string(&mut s).is_err());
    }
}
