//! `file://` URIs and `text/uri-list` (RFC 2483), the payload of an XDND file drop.

use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::path::Path;

/// Bytes kept as they are in a path: RFC 3986's unreserved characters and the separator. Every
/// other byte (space, `%`, `#`, `?`, non-ASCII UTF-8...) is percent-encoded, which every target
/// decodes; leaving more unencoded gains nothing and risks a target that parses strictly.
const PATH_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// The `file:///…` URI of an absolute path (empty host: the local machine), encoding the path's
/// raw bytes so non-UTF-8 names survive.
pub fn file_uri(path: &Path) -> String {
    #[cfg(unix)]
    let bytes: Vec<u8> = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    // Windows paths (C:\x) become /C:/x; only the platform-neutral tests use this branch here.
    #[cfg(not(unix))]
    let bytes: Vec<u8> = {
        let s = path.to_string_lossy().replace('\\', "/");
        if s.starts_with('/') {
            s.into_bytes()
        } else {
            format!("/{s}").into_bytes()
        }
    };
    format!("file://{}", percent_encode(&bytes, PATH_KEEP))
}

/// A `text/uri-list` body: one URI per line, each line ended by CRLF as RFC 2483 requires.
pub fn uri_list<P: AsRef<Path>>(paths: &[P]) -> String {
    paths
        .iter()
        .map(|p| format!("{}\r\n", file_uri(p.as_ref())))
        .collect()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    // Expected values written by hand from RFC 3986 (unreserved set, %XX of each UTF-8 byte).
    #[test]
    fn encodes_reserved_and_non_ascii_bytes() {
        assert_eq!(
            file_uri(Path::new("/tmp/clip 1.wav")),
            "file:///tmp/clip%201.wav"
        );
        assert_eq!(
            file_uri(Path::new("/a/100%#?.wav")),
            "file:///a/100%25%23%3F.wav"
        );
        assert_eq!(
            file_uri(Path::new("/Musik/Klänge~_-x.wav")),
            "file:///Musik/Kl%C3%A4nge~_-x.wav"
        );
        let latin1 = Path::new(OsStr::from_bytes(b"/x/\xe9.wav"));
        assert_eq!(file_uri(latin1), "file:///x/%E9.wav");
    }

    #[test]
    fn uri_list_ends_every_line_with_crlf() {
        assert_eq!(uri_list(&["/a b", "/c"]), "file:///a%20b\r\nfile:///c\r\n");
    }
}
