//! Resumable upload, tus 1.0 core + creation: create, HEAD, PATCH, resume after a broken PATCH,
//! offset mismatch, and the 412/413/415 refusals.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{Client, Reply, sandbox};

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

fn create(c: &Client, length: u64) -> String {
    let length = length.to_string();
    let reply = c.call(
        "POST",
        "/v1/uploads",
        &[
            TUS,
            ("Upload-Length", &length),
            ("Upload-Metadata", "filename cmVwbGF5Lm1wNA=="),
        ],
        b"",
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.header("Tus-Resumable"), Some("1.0.0"));
    let location = reply.header("Location").expect("Location").to_owned();
    assert!(location.starts_with("/v1/uploads/"), "{location}");
    location
}

fn head(c: &Client, location: &str) -> Reply {
    c.call("HEAD", location, &[], b"")
}

fn offset(c: &Client, location: &str) -> u64 {
    let reply = head(c, location);
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.header("Upload-Offset").unwrap().parse().unwrap()
}

fn patch(c: &Client, location: &str, at: u64, bytes: &[u8]) -> Reply {
    let at = at.to_string();
    c.call(
        "PATCH",
        location,
        &[TUS, OCTETS, ("Upload-Offset", &at)],
        bytes,
    )
}

fn stored(sb: &fieldcast_sandbox::Sandbox, location: &str) -> Vec<u8> {
    let id = location.rsplit('/').next().unwrap();
    std::fs::read(sb.data_dir().join("uploads").join(id)).unwrap()
}

#[test]
fn options_advertises_the_protocol() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let reply = c.call("OPTIONS", "/v1/uploads", &[], b"");
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("Tus-Resumable"), Some("1.0.0"));
    assert_eq!(reply.header("Tus-Version"), Some("1.0.0"));
    assert_eq!(reply.header("Tus-Extension"), Some("creation"));
    let max: u64 = reply.header("Tus-Max-Size").unwrap().parse().unwrap();
    assert!(max >= 1 << 30);
}

#[test]
fn create_head_and_patch_in_two_parts() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let location = create(&c, data.len() as u64);
    let fresh = head(&c, &location);
    assert_eq!(fresh.header("Upload-Offset"), Some("0"));
    assert_eq!(fresh.header("Upload-Length"), Some("10000"));
    assert_eq!(fresh.header("Cache-Control"), Some("no-store"));
    assert_eq!(fresh.header("Tus-Resumable"), Some("1.0.0"));

    let first = patch(&c, &location, 0, &data[..6000]);
    assert_eq!(first.status, 204, "{first:?}");
    assert_eq!(first.header("Upload-Offset"), Some("6000"));
    let second = patch(&c, &location, 6000, &data[6000..]);
    assert_eq!(second.header("Upload-Offset"), Some("10000"));
    assert_eq!(offset(&c, &location), 10_000);
    assert_eq!(stored(&sb, &location), data);
}

#[test]
fn a_broken_patch_keeps_what_arrived_and_the_upload_resumes() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 97) as u8).collect();
    let location = create(&c, 1000);
    // Announce 1000 bytes, send 400, and vanish.
    {
        let mut stream = c.connect().unwrap();
        let head = c.head(
            "PATCH",
            &location,
            &[TUS, OCTETS, ("Upload-Offset", "0")],
            Some(1000),
        );
        stream.write_all(&head).unwrap();
        stream.write_all(&data[..400]).unwrap();
        stream.flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut resumed_at = 0;
    for _ in 0..50 {
        resumed_at = offset(&c, &location);
        if resumed_at == 400 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(resumed_at, 400, "the 400 bytes that arrived are kept");
    let stale = patch(&c, &location, 0, &data);
    assert_eq!(stale.status, 409, "{stale:?}");
    assert_eq!(stale.code(), "upload_offset_mismatch");
    assert!(stale.message().contains("400"), "{}", stale.message());
    let rest = patch(&c, &location, 400, &data[400..]);
    assert_eq!(rest.status, 204, "{rest:?}");
    assert_eq!(rest.header("Upload-Offset"), Some("1000"));
    assert_eq!(stored(&sb, &location), data);
}

#[test]
fn refusals_412_413_415_404_and_400() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let old = c.call(
        "POST",
        "/v1/uploads",
        &[("Tus-Resumable", "0.2.2"), ("Upload-Length", "5")],
        b"",
    );
    assert_eq!(old.status, 412);
    assert_eq!(old.header("Tus-Version"), Some("1.0.0"));
    assert_eq!(old.code(), "tus_version_unsupported");
    assert_eq!(
        c.call("POST", "/v1/uploads", &[("Upload-Length", "5")], b"")
            .status,
        412
    );

    let huge = c.call(
        "POST",
        "/v1/uploads",
        &[TUS, ("Upload-Length", "99999999999999")],
        b"",
    );
    assert_eq!(huge.status, 413);
    assert_eq!(huge.code(), "upload_too_large");

    let no_length = c.call("POST", "/v1/uploads", &[TUS], b"");
    assert_eq!(no_length.status, 400);
    assert!(
        no_length.message().contains("upload-length"),
        "{}",
        no_length.message()
    );
    let bad_meta = c.call(
        "POST",
        "/v1/uploads",
        &[
            TUS,
            ("Upload-Length", "5"),
            ("Upload-Metadata", "filename ***"),
        ],
        b"",
    );
    assert_eq!(bad_meta.status, 400);
    assert!(
        bad_meta.message().contains("filename"),
        "{}",
        bad_meta.message()
    );

    let location = create(&c, 5);
    let wrong_type = c.call(
        "PATCH",
        &location,
        &[
            TUS,
            ("Content-Type", "application/octet-stream"),
            ("Upload-Offset", "0"),
        ],
        b"hello",
    );
    assert_eq!(wrong_type.status, 415);
    assert_eq!(wrong_type.code(), "unsupported_media_type");
    let too_long = patch(&c, &location, 0, b"hello, world");
    assert_eq!(too_long.status, 413);
    assert_eq!(too_long.code(), "upload_too_large");
    let no_version = c.call(
        "PATCH",
        &location,
        &[OCTETS, ("Upload-Offset", "0")],
        b"hello",
    );
    assert_eq!(no_version.status, 412);
    let no_offset = c.call("PATCH", &location, &[TUS, OCTETS], b"hello");
    assert_eq!(no_offset.status, 400);
    assert!(
        no_offset.message().contains("upload-offset"),
        "{}",
        no_offset.message()
    );
    assert_eq!(
        offset(&c, &location),
        0,
        "no refused request wrote anything"
    );
    assert_eq!(patch(&c, &location, 0, b"hello").status, 204);

    assert_eq!(head(&c, "/v1/uploads/nothing").status, 404);
    assert_eq!(patch(&c, "/v1/uploads/nothing", 0, b"x").status, 404);
}

#[test]
fn an_empty_upload_is_complete_at_once() {
    let sb = sandbox();
    let c = Client::new(&sb);
    let location = create(&c, 0);
    let reply = head(&c, &location);
    assert_eq!(reply.header("Upload-Offset"), Some("0"));
    assert_eq!(reply.header("Upload-Length"), Some("0"));
}
