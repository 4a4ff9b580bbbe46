//! Tests of `names.rs`: parsing, the name round trip, tag/rmi, digest lookup, and
//! concurrent writers of `index.json` (threads and processes).

use super::*;
use crate::store::testutil::{image_in, store_with_image};

fn name(s: &str) -> ImageName {
    ImageName::parse(s).unwrap()
}

#[test]
fn names_parse_and_normalize() {
    assert_eq!(name("app").to_string(), "app:latest");
    assert_eq!(name("app:1").tag(), "1");
    let n = name("localhost:5000/team/app");
    assert_eq!(
        (n.repository(), n.tag()),
        ("localhost:5000/team/app", "latest")
    );
    assert_eq!(name("app:1").fully_qualified(), "docker.io/library/app:1");
    assert_eq!(name("team/app:1").fully_qualified(), "docker.io/team/app:1");
    assert_eq!(
        name("registry.example/app:1").fully_qualified(),
        "registry.example/app:1"
    );
    for bad in [
        "",
        "App",
        "app:",
        "app:-x",
        "a//b",
        "app@sha256:00",
        "-app",
        "a..b",
    ] {
        assert!(ImageName::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn names_round_trip() {
    let (_d, store, desc) = store_with_image(b"layer");
    store.set_name(&name("app:1"), &desc).unwrap();
    assert_eq!(store.resolve("app:1").unwrap(), Some(desc.clone()));
    assert_eq!(store.resolve("app").unwrap(), None);
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.to_string(), &listed[0].descriptor),
        ("app:1".into(), &desc)
    );
    // The name is the full name in the OCI annotation.
    let index = store.read_index().unwrap();
    assert_eq!(index.manifests[0].annotations[REF_NAME_ANNOTATION], "app:1");
    // A name without a tag is stored as :latest; re-setting a name moves it.
    let other = image_in(&store, b"other layer");
    store.set_name(&name("app"), &desc).unwrap();
    store.set_name(&name("app"), &other).unwrap();
    assert_eq!(store.resolve("app:latest").unwrap(), Some(other));
    assert_eq!(store.list().unwrap().len(), 2);
}

#[test]
fn tag_and_remove() {
    let (_d, store, desc) = store_with_image(b"layer");
    store.set_name(&name("app:1"), &desc).unwrap();
    assert_eq!(store.tag("app:1", &name("app:2")).unwrap(), desc);
    assert_eq!(store.resolve("app:2").unwrap(), Some(desc.clone()));
    assert_eq!(store.remove_name(&name("app:1")).unwrap(), desc);
    assert_eq!(store.resolve("app:1").unwrap(), None);
    assert!(matches!(
        store.remove_name(&name("app:1")),
        Err(Error::ImageNotFound { name }) if name == "app:1"
    ));
    assert!(matches!(
        store.tag("missing", &name("x")),
        Err(Error::ImageNotFound { name }) if name == "missing"
    ));
    assert_eq!(store.list().unwrap()[0].name.to_string(), "app:2");
}

#[test]
fn resolve_by_digest_and_prefix() {
    let (_d, store, a) = store_with_image(b"layer a");
    let b = image_in(&store, b"layer b");
    store.set_name(&name("a"), &a).unwrap();
    store.set_name(&name("a2"), &a).unwrap();
    store.set_name(&name("b"), &b).unwrap();
    assert_eq!(
        store.resolve(&a.digest.to_string()).unwrap(),
        Some(a.clone())
    );
    // Two names for one digest are not ambiguous.
    assert_eq!(
        store.resolve(&a.digest.hex()[..12]).unwrap(),
        Some(a.clone())
    );
    let sha_prefix = format!("sha256:{}", &b.digest.hex()[..8]);
    assert_eq!(store.resolve(&sha_prefix).unwrap(), Some(b.clone()));
    // A prefix matching nothing.
    let unused = ('0'..='9')
        .chain('a'..='f')
        .find(|c| !a.digest.hex().starts_with(*c) && !b.digest.hex().starts_with(*c))
        .unwrap();
    assert_eq!(store.resolve(&format!("{unused}{unused}")).unwrap(), None);
    assert!(matches!(
        store.resolve("Not A Name"),
        Err(Error::InvalidName { .. })
    ));
}

#[test]
fn unnamed_images_resolve_by_full_digest() {
    let (_d, store, desc) = store_with_image(b"layer");
    let mut found = store.resolve(&desc.digest.to_string()).unwrap().unwrap();
    assert_eq!(
        (found.media_type.as_str(), found.size),
        (desc.media_type.as_str(), desc.size)
    );
    found.platform = desc.platform.clone();
    assert_eq!(found, desc);
    store
        .tag(&desc.digest.to_string(), &name("now:named"))
        .unwrap();
    assert!(store.resolve("now:named").unwrap().is_some());
    // A layer blob is not an image.
    let manifest: Manifest =
        serde_json::from_slice(&store.read_blob(&desc.digest).unwrap()).unwrap();
    assert_eq!(
        store
            .resolve(&manifest.layers[0].digest.to_string())
            .unwrap(),
        None
    );
}

#[test]
fn incomplete_images_are_not_named() {
    let (_d, store, desc) = store_with_image(b"layer");
    let manifest: Manifest =
        serde_json::from_slice(&store.read_blob(&desc.digest).unwrap()).unwrap();
    std::fs::remove_file(store.blob_path(&manifest.layers[0].digest)).unwrap();
    let err = store.set_name(&name("app"), &desc).unwrap_err();
    assert!(
        matches!(&err, Error::Incomplete { name, missing } if name == "app:latest" && *missing == manifest.layers[0].digest),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn concurrent_threads_lose_no_names() {
    let (dir, store, desc) = store_with_image(b"layer");
    std::thread::scope(|s| {
        for t in 0..4 {
            let desc = &desc;
            let root = dir.path();
            s.spawn(move || {
                let own = Store::open(root).unwrap();
                for i in 0..10 {
                    own.put_bytes(b"shared blob").unwrap();
                    own.set_name(&name(&format!("t{t}:{i}")), desc).unwrap();
                }
            });
        }
    });
    assert_eq!(store.list().unwrap().len(), 40);
}

/// Env var telling [`child_sets_names`] which store and name prefix to use.
const CHILD_ENV: &str = "RBUILD_TEST_NAMES_CHILD";

#[test]
fn concurrent_processes_lose_no_names() {
    let (dir, store, desc) = store_with_image(b"layer");
    store.set_name(&name("base"), &desc).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|p| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "store::names::tests::child_sets_names",
                    "--ignored",
                    "--quiet",
                ])
                .env(
                    CHILD_ENV,
                    format!("{}|p{p}|{}", dir.path().display(), desc.digest),
                )
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let names: Vec<String> = store
        .list()
        .unwrap()
        .iter()
        .map(|n| n.name.to_string())
        .collect();
    assert_eq!(names.len(), 31, "{names:?}");
    // Each child's work dir went away with it.
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        2
    );
}

/// Runs in a child process of [`concurrent_processes_lose_no_names`].
#[test]
#[ignore = "helper: run by concurrent_processes_lose_no_names in a child process"]
fn child_sets_names() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split('|');
    let (root, prefix, digest) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let store = Store::open(std::path::Path::new(root)).unwrap();
    let desc = store.resolve(digest).unwrap().unwrap();
    for i in 0..10 {
        store.put_bytes(b"shared blob").unwrap();
        store
            .set_name(&name(&format!("{prefix}:{i}")), &desc)
            .unwrap();
    }
}
