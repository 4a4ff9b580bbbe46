//! Hostile input (issue 12): layers crafted to escape or exhaust the builder, from a
//! base image pushed to the real test registry, from the build context, from `RUN` and
//! from an ADD'ed archive. Docker/containerd refuse them; so does rbuild, naming the
//! layer and the entry, and nothing outside the target is touched.

use std::io::Write;
use std::path::PathBuf;

use crate::registry::{available, push_raw, put_blob, tag_manifest, Registry, OCI_MANIFEST};
use crate::support::{busybox, can_mount, rbuild_measured, TestContext};

/// A tar header block: `kind` (`b'0'`, `b'5'`, `b'x'`, ...) for `size` bytes named `name`.
fn header(kind: u8, name: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::new(kind));
    // Raw bytes: `set_path` refuses names such as `.wh...`.
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(size);
    h.set_mode(if kind == b'5' { 0o755 } else { 0o644 });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// One tar entry: header, data, padding to the block.
fn entry(kind: u8, name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = header(kind, name, data.len() as u64);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A tar archive of `entries` with its end blocks.
fn tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = entries.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// One PAX record `"<len> <key>=<value>\n"` of exactly `len` bytes (value of `v`s).
fn pax_record_of_len(key: &str, len: usize) -> Vec<u8> {
    let value = len - key.len() - 3 - len.to_string().len();
    let rec = format!("{len} {key}={}\n", "v".repeat(value)).into_bytes();
    assert_eq!(rec.len(), len);
    rec
}

/// Pushes to `host/repo:1` an image whose one gzip layer is the tar made of `chunks`
/// (streamed: the tar itself is never held whole); returns the reference and the
/// layer's digest.
fn push_image(host: &str, repo: &str, chunks: impl Iterator<Item = Vec<u8>>) -> (String, String) {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut hasher = rbuild::digest::Hasher::new(gz);
    for chunk in chunks {
        hasher.write_all(&chunk).expect("gzip into memory");
    }
    let (diff_id, _, gz) = hasher.finish();
    let layer = gz.finish().expect("gzip into memory");
    let dir = tempfile::tempdir().expect("temp dir");
    let layer_digest = put_blob(dir.path(), &layer);
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]}})
    .to_string();
    let config_digest = put_blob(dir.path(), config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer.len()}],
    })
    .to_string();
    tag_manifest(dir.path(), OCI_MANIFEST, manifest.as_bytes(), "hostile");
    push_raw(dir.path(), "hostile", host, repo);
    (format!("{host}/{repo}:1"), layer_digest)
}

/// Writes `dockerfile` into the context of `t`.
fn dockerfile(t: &TestContext, text: &str) {
    std::fs::write(t.context().join("Dockerfile"), text).expect("Dockerfile");
}

/// A canary file in the store that no build may remove.
fn store_canaries(t: &TestContext) -> Vec<PathBuf> {
    let canary = t.root().join("canary");
    std::fs::create_dir_all(t.root()).expect("store dir");
    std::fs::write(&canary, "c").expect("canary");
    vec![canary]
}

/// The store holds no damage (`rbuild store check`).
fn assert_store_intact(t: &TestContext) {
    let (ok, report) = crate::integrity::store_check(&t.root(), &[]);
    assert!(ok && !report.contains("damage"), "{report}");
}

fn assert_all_exist(paths: &[PathBuf], context: &str) {
    for p in paths {
        assert!(p.exists(), "{} was removed: {context}", p.display());
    }
}

/// A base layer whiteout of `..` (`.wh...`): before, `-o type=local,dest=DIR/out`
/// emptied DIR on the host and a snapshot unlinked the store's work directory. Now
/// every use of the layer fails, naming the layer and the entry, and nothing outside
/// the target is touched.
#[test]
fn a_base_layer_whiteout_of_dot_dot_is_refused() {
    if !available(&[]) || !can_mount() {
        return;
    }
    let reg = Registry::plain();
    for (i, evil) in [".wh...", ".wh..", "etc/.wh..."].into_iter().enumerate() {
        let layer = tar(&[
            entry(b'5', "etc/", b""),
            entry(b'0', "etc/motd", b"hi\n"),
            entry(b'0', evil, b""),
        ]);
        let repo = format!("hostile/dot{i}");
        let (image, layer_digest) = push_image(reg.host(), &repo, std::iter::once(layer));
        let t = TestContext::new("", &[("a.txt", "a")]);
        let canaries = store_canaries(&t);
        let beside = t.path("dir/canary");
        std::fs::create_dir_all(t.path("dir")).expect("dir");
        std::fs::write(&beside, "c").expect("canary");
        let expect_refusal = |err: &str| {
            assert!(
                err.contains(&layer_digest)
                    && err.contains(&format!("`{evil}`"))
                    && err.contains("invalid whiteout name"),
                "{evil}: {err}"
            );
        };
        // Exported as a directory: the layer is applied with its whiteouts carried out.
        dockerfile(&t, &format!("FROM {image}\n"));
        let out = t.path("dir/out");
        for output in [
            format!("type=local,dest={}", out.display()),
            out.display().to_string(),
        ] {
            let err = t.build_fails(&["-o", &output]);
            assert_all_exist(std::slice::from_ref(&beside), &err);
            expect_refusal(&err);
        }
        // Used as the lower of a step: the layer becomes a snapshot in the store.
        dockerfile(&t, &format!("FROM {image}\nCOPY a.txt /\n"));
        let err = t.build_fails(&[]);
        assert_all_exist(&canaries, &err);
        expect_refusal(&err);
        assert_store_intact(&t);
    }
}

/// A file named like a whiteout cannot be stored in a layer: COPY of such context
/// files fails at layer writing, naming the path. Before, `.wh...` went into the layer
/// and `-o type=local,dest=DIR/out` then emptied DIR on the host.
#[test]
fn context_files_named_like_whiteouts_cannot_be_copied() {
    if !can_mount() {
        return;
    }
    for name in [".wh...", ".wh..", ".wh.x"] {
        let t = TestContext::new(
            &format!("FROM scratch\nCOPY a.txt {name} /\n"),
            &[("a.txt", "a"), (name, "evil")],
        );
        let beside = t.path("dir/canary");
        std::fs::create_dir_all(t.path("dir")).expect("dir");
        std::fs::write(&beside, "c").expect("canary");
        let out = format!("type=local,dest={}", t.path("dir/out").display());
        let err = t.build_fails(&["-o", &out]);
        assert_all_exist(&[beside], &err);
        assert!(
            err.contains(&format!("created `/{name}`"))
                && err.contains("a name starting with .wh. cannot be stored in a layer")
                && err.contains("Dockerfile:2"),
            "{name}: {err}"
        );
    }
}

/// `RUN touch /.wh...` fails when its layer is written, naming the path.
#[test]
fn run_creating_a_whiteout_name_fails_at_layer_writing() {
    let Some(t) = busybox("RUN touch /.wh... /ok\n", &[]) else {
        return;
    };
    let err = t.build_fails(&[]);
    assert!(
        err.contains("RUN touch /.wh... /ok")
            && err.contains("created `/.wh...`: a name starting with .wh. cannot be stored in a layer (OCI whiteout prefix)"),
        "{err}"
    );
}

/// An ADD'ed local tar holding `.wh...`: refused, naming the archive and the entry;
/// the files of the step's root and the store stay.
#[test]
fn add_of_an_archive_with_a_whiteout_of_dot_dot_is_refused() {
    if !can_mount() {
        return;
    }
    let archive = tar(&[entry(b'0', "f", b"f"), entry(b'0', ".wh...", b"")]);
    let t = TestContext::new(
        "FROM scratch\nCOPY a.txt /keep/\nADD evil.tar /keep/sub/\n",
        &[("a.txt", "a")],
    );
    std::fs::write(t.context().join("evil.tar"), archive).expect("archive");
    let canaries = store_canaries(&t);
    let err = t.build_fails(&[]);
    assert!(
        err.contains("evil.tar")
            && err.contains("`.wh...`")
            && err.contains("invalid whiteout name"),
        "{err}"
    );
    assert_all_exist(&canaries, &err);
    assert_store_intact(&t);
}

/// 100 consecutive PAX headers of 16 MiB each before one file (a 1.6 MB gzip layer):
/// before, their records piled up and were cloned (3.3 GB of RAM). Now the first
/// header is refused (Go's 1 MiB cap), naming it and the layer, in bounded memory; and
/// a layer of many headers under the cap is applied in bounded memory too (each `x`
/// header replaces the one before, as in Go).
#[test]
fn pax_header_bombs_run_in_bounded_memory() {
    if !available(&["/usr/bin/time"]) || !can_mount() {
        return;
    }
    let reg = Registry::plain();
    let headers = |count: usize, record: usize| {
        (0..count)
            .map(move |_| {
                entry(
                    b'x',
                    "PaxHeaders.0/f",
                    &pax_record_of_len("SCHILY.xattr.user.bomb", record),
                )
            })
            .chain([entry(b'0', "f", b"x"), vec![0u8; 1024]])
    };
    let (bomb, bomb_digest) = push_image(reg.host(), "hostile/bomb", headers(100, 16 << 20));
    // Under the cap: comments (ignored records), 1 MiB each.
    let comments = (0..64)
        .map(|_| {
            entry(
                b'x',
                "PaxHeaders.0/g",
                &pax_record_of_len("comment", 1 << 20),
            )
        })
        .chain([entry(b'0', "g", b"g"), vec![0u8; 1024]]);
    let (many, _) = push_image(reg.host(), "hostile/many", comments);
    let t = TestContext::new("", &[("a.txt", "a")]);
    let ctx = t.context().display().to_string();
    let limit_kib = 100 * 1024;
    dockerfile(&t, &format!("FROM {bomb}\nCOPY a.txt /\n"));
    let (ok, err, rss) = rbuild_measured(&t.root(), &["build", "--progress", "plain", &ctx]);
    assert!(!ok, "the bomb was applied");
    assert!(
        err.contains(&bomb_digest)
            && err.contains("PaxHeaders.0/f")
            && err.contains("over the 1 MiB limit"),
        "{err}"
    );
    assert!(rss < limit_kib, "max RSS {rss} KiB applying the bomb");
    let out = t.path("out");
    let local = format!("type=local,dest={}", out.display());
    let (ok, err, rss) = rbuild_measured(&t.root(), &["build", "-o", &local, &ctx]);
    assert!(!ok && err.contains("over the 1 MiB limit"), "{err}");
    assert!(rss < limit_kib, "max RSS {rss} KiB exporting the bomb");
    dockerfile(&t, &format!("FROM {many}\nCOPY a.txt /\n"));
    let (ok, err, rss) = rbuild_measured(&t.root(), &["build", "-o", &local, &ctx]);
    assert!(ok, "{err}");
    assert!(
        rss < limit_kib,
        "max RSS {rss} KiB applying 64 MiB of PAX headers"
    );
    assert_eq!(std::fs::read(out.join("g")).expect("g"), b"g");
    assert!(out.join("a.txt").is_file());
}

/// A tar entry of `kind` (`b'1'` hard link, `b'2'` symlink) named `name` pointing at
/// `target`.
fn link(kind: u8, name: &str, target: &str) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::new(kind));
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
    h.set_size(0);
    h.set_mode(0o777);
    h.set_mtime(0);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// `rbuild pull` applies a pulled image's layers at once: crafted layers are refused
/// there, naming the layer and the entry, nothing outside the store is touched, the
/// refused image is not named (before, the pull named it and then failed), and the
/// store stays intact.
#[test]
fn rbuild_pull_of_hostile_layers_touches_nothing_outside_the_store() {
    if !available(&[]) || !can_mount() {
        return;
    }
    let reg = Registry::plain();
    let t = TestContext::new("", &[]);
    let outside = t.path("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    let out = outside.display().to_string();
    let cases: [(&str, Vec<Vec<u8>>, &str); 4] = [
        (
            "whiteout",
            vec![entry(b'0', "a", b"a"), entry(b'0', ".wh...", b"")],
            "invalid whiteout name",
        ),
        (
            "dotdot",
            vec![entry(b'0', "../../pwned", b"x")],
            "`../../pwned`",
        ),
        (
            "symlink",
            vec![
                link(b'2', "escape", &out),
                entry(b'0', "escape/pwned", b"x"),
            ],
            "`escape/pwned`: a parent directory is a symlink",
        ),
        (
            "hardlink",
            vec![link(b'1', "passwd", &format!("{out}/../../../etc/passwd"))],
            "`passwd`",
        ),
    ];
    let canaries = store_canaries(&t);
    for (name, entries, refusal) in cases {
        let repo = format!("hostile/pull-{name}");
        let (image, layer_digest) = push_image(reg.host(), &repo, std::iter::once(tar(&entries)));
        let pulled = crate::support::rbuild_in(&t.root(), &["pull", &image], &[]);
        let err = String::from_utf8_lossy(&pulled.stderr).into_owned();
        assert!(!pulled.status.success(), "{name}: pulled\n{err}");
        assert!(
            err.contains(&layer_digest) && err.contains(refusal),
            "{name}: {err}"
        );
        let images = crate::support::rbuild_in(&t.root(), &["images"], &[]);
        let listed = String::from_utf8_lossy(&images.stdout).into_owned();
        assert!(
            !listed.contains(&repo),
            "{name}: a refused image is named\n{listed}"
        );
        let left: Vec<_> = std::fs::read_dir(&outside).expect("outside").collect();
        assert!(left.is_empty(), "{name}: wrote outside the store: {left:?}");
        assert!(
            !t.path("pwned").exists() && !t.root().join("../pwned").exists(),
            "{name}"
        );
        assert_all_exist(&canaries, name);
        assert_store_intact(&t);
    }
}
