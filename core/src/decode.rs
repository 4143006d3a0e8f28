//! From received bytes to the JSON text of a batch: gzip recognised by its
//! magic bytes and inflated with its output capped while it is read, so a
//! small compressed body cannot expand past the limit (a gzip bomb costs us
//! at most `max_body_bytes + 1` bytes of memory).

use std::borrow::Cow;
use std::io::Read;

use flate2::read::MultiGzDecoder;

use crate::error::BatchError;
use crate::limits::Limits;
use crate::wire::GZIP_MAGIC;

/// Returns the batch's JSON bytes: `raw` itself, or `raw` inflated.
pub fn decode_body<'a>(raw: &'a [u8], limits: &Limits) -> Result<Cow<'a, [u8]>, BatchError> {
    let limit = limits.max_body_bytes;
    if raw.len() > limit {
        return Err(BatchError::BodyTooLarge { limit });
    }
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(Cow::Borrowed(raw));
    }
    inflate_capped(raw, limit).map(Cow::Owned)
}

/// Inflates a gzip body, reading at most `limit + 1` bytes of output.
pub fn inflate_capped(gz: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::with_capacity(gz.len().saturating_mul(4).min(limit));
    MultiGzDecoder::new(gz)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|_| BatchError::BadGzip)?;
    if out.len() > limit {
        return Err(BatchError::BodyTooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        enc.write_all(data).expect("write to memory");
        enc.finish().expect("finish in memory")
    }

    fn limits(max_body_bytes: usize) -> Limits {
        Limits {
            max_body_bytes,
            ..Limits::default()
        }
    }

    #[test]
    fn plain_body_passes_through_at_the_limit_and_not_one_over() {
        let body = vec![b' '; 100];
        assert_eq!(decode_body(&body, &limits(100)).as_deref(), Ok(&body[..]));
        assert_eq!(
            decode_body(&body, &limits(99)),
            Err(BatchError::BodyTooLarge { limit: 99 })
        );
    }

    #[test]
    fn gzip_inflates_at_the_limit_and_not_one_over() {
        let json = vec![b'x'; 1000];
        let gz = gzip(&json);
        assert_eq!(decode_body(&gz, &limits(1000)).as_deref(), Ok(&json[..]));
        assert_eq!(
            decode_body(&gz, &limits(999)),
            Err(BatchError::BodyTooLarge { limit: 999 })
        );
    }

    #[test]
    fn gzip_bomb_is_refused_without_inflating_it_all() {
        // 64 MiB of zeros compress to ~64 KiB; the default limit is 512 KiB.
        let gz = gzip(&vec![0u8; 64 << 20]);
        assert!(gz.len() < Limits::default().max_body_bytes);
        assert_eq!(
            decode_body(&gz, &Limits::default()),
            Err(BatchError::BodyTooLarge { limit: 512 * 1024 })
        );
    }

    #[test]
    fn truncated_gzip_is_bad_gzip() {
        let gz = gzip(b"{\"events\":[]}");
        assert_eq!(
            decode_body(&gz[..gz.len() - 6], &Limits::default()),
            Err(BatchError::BadGzip)
        );
        assert_eq!(
            decode_body(&GZIP_MAGIC, &Limits::default()),
            Err(BatchError::BadGzip)
        );
    }
}
