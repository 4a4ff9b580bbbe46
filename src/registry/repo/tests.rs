//! Tests of the repository calls: upload locations and ranges, hostile blob sizes.

use super::blob_upload::{absolute, range_end, with_digest};
use super::*;
use crate::image::Descriptor;
use crate::store::Store;

#[test]
fn locations_and_digests_compose() {
    let base = reqwest::Url::parse("http://r:5000/v2/a/blobs/uploads/").unwrap();
    assert_eq!(
        absolute(&base, "/v2/a/blobs/uploads/u1?_state=x"),
        "http://r:5000/v2/a/blobs/uploads/u1?_state=x"
    );
    assert_eq!(absolute(&base, "https://other/up/1"), "https://other/up/1");
    let d = Digest::of(b"x");
    assert_eq!(
        with_digest("http://r/u?s=1", &d),
        format!("http://r/u?s=1&digest={d}")
    );
    assert_eq!(
        with_digest("http://r/u", &d),
        format!("http://r/u?digest={d}")
    );
    assert_eq!(
        media_types::declared(br#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
        Some(media_types::OCI_INDEX)
    );
}

/// Answers every HTTP request on 127.0.0.1 with `head` (status line and headers,
/// without the blank line) and `body`; the port.
fn fake_registry(head: &'static str, body: &'static [u8]) -> u16 {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.read(&mut [0u8; 8192]);
            let reply = format!(
                "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    port
}

fn test_client(dir: &std::path::Path) -> Client {
    Client::new(crate::registry::RegistryOptions {
        retries: 0,
        credential_files: crate::registry::CredentialFiles {
            auth_files: Vec::new(),
            docker_config: dir.join("no-config.json"),
            helper_dir: None,
        },
        ..Default::default()
    })
}

/// A descriptor size of `u64::MAX` (a hostile manifest) is a size mismatch naming
/// both sizes; before, `size + 1` overflowed (a panic in debug builds, "is 0 bytes"
/// in release builds).
#[test]
fn a_blob_size_of_u64_max_is_a_clear_mismatch() {
    let port = fake_registry("HTTP/1.1 200 OK", b"0123456789");
    let dir = tempfile::tempdir().unwrap();
    let client = test_client(dir.path());
    let reference = Reference::parse(&format!("127.0.0.1:{port}/test/huge")).unwrap();
    let repo = Repo::new(&client, &reference, false, &[]);
    let store = Store::open(&dir.path().join("store")).unwrap();
    let desc = Descriptor::new("application/octet-stream", Digest::of(b"x"), u64::MAX);
    let err = repo
        .fetch_blob(&desc, &store, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("18446744073709551615") && err.contains(" 10 bytes"),
        "{err}"
    );
}

#[test]
fn upload_ranges_are_checked() {
    assert_eq!(range_end("0-99"), Some(100));
    assert_eq!(range_end("bytes=0-0"), Some(1));
    assert_eq!(range_end(&format!("0-{}", u64::MAX)), None, "N+1 overflows");
    assert_eq!(range_end("0-x"), None);
    let dir = tempfile::tempdir().unwrap();
    let client = test_client(dir.path());
    let reference = Reference::parse("127.0.0.1:9/test/up").unwrap();
    let repo = Repo::new(&client, &reference, true, &[]);
    let d = Digest::of(b"x");
    assert_eq!(repo.chunk_end(None, 10, 20, &d).unwrap(), 20);
    assert_eq!(repo.chunk_end(Some(15), 10, 20, &d).unwrap(), 15);
    assert_eq!(repo.chunk_end(Some(20), 10, 20, &d).unwrap(), 20);
    // No progress (a registry that always says `0-0`) or more than was sent.
    for bad in [1, 10, 21, u64::MAX] {
        let err = repo
            .chunk_end(Some(bad), 10, 20, &d)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("holds {bad} bytes")), "{err}");
    }
}
