//! Turning a raw object into a decompressed byte reader.
//!
//! An object of up to [`WHOLE_OBJECT_BYTES`] (a day's extract file, typically) is
//! fetched in one request and read from memory; a larger one is streamed from the
//! store and bridged to a blocking `std::io::Read`. Either way the CSV and NDJSON
//! parsers run on a blocking thread while the async side keeps writing batches.
//! (Streaming a local file costs one blocking-pool task per 8 KiB chunk in
//! object_store; at 200k customers the sources stage spent about a quarter of
//! its CPU samples in the kernel, mostly the scheduler, handing those off.)

use std::io::{self, BufReader, Cursor, Read};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::error::SourceError;
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

/// Wraps `reader` in the streaming decoder its compression needs.
pub(crate) fn decompress<'r>(
    reader: impl Read + Send + 'r,
    compression: Codec,
) -> io::Result<Box<dyn Read + Send + 'r>> {
    Ok(match compression {
        Codec::None => Box::new(reader),
        // Multi-member: `cat a.gz b.gz` is a valid gzip file and must be read whole.
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(reader))),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
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
        let mut r = decompress(&bytes[..], Codec::Gzip).unwrap();
        assert_eq!(read_all(&mut r), "a,b\n1,2\n");
    }

    #[test]
    fn zstd_round_trips() {
        let bytes = zstd::encode_all(&b"x\ny\n"[..], 3).unwrap();
        let mut r = decompress(&bytes[..], Codec::Zstd).unwrap();
        assert_eq!(read_all(&mut r), "x\ny\n");
    }

    #[test]
    fn corrupt_gzip_is_an_io_error() {
        let mut r = decompress(&b"not gzip at all"[..], Codec::Gzip).unwrap();
        let mut s = String::new();
        assert!(r.read_to_string(&mut s).is_err());
    }
}
