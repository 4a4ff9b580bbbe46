//! The image ID is the config digest, as docker and podman call it: the build's last
//! line, `-q`, `--iidfile`, `rbuild images` and `inspect` agree, every command takes
//! it (whole or a prefix) where it takes a name, an image built without a name is
//! listed and removed by it, and podman reports the same ID for the exported image.

use crate::support::{can_mount, have, podman, run_fails, run_ok, TestContext};

fn context() -> Option<TestContext> {
    if !can_mount() {
        return None;
    }
    Some(TestContext::new(
        "FROM scratch\nCOPY a /a\nENV X=1\nCMD [\"/a\"]\n",
        &[("a", "a\n")],
    ))
}

/// `rbuild images` rows (after the header), as whitespace-separated words.
fn images(t: &TestContext, args: &[&str]) -> Vec<Vec<String>> {
    let mut all = vec!["images"];
    all.extend_from_slice(args);
    let (out, _) = run_ok(&t.root(), &all, &[]);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let words: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "NAME",
            "IMAGE",
            "ID",
            "DIGEST",
            "CREATED",
            "SIZE",
            "PLATFORMS"
        ],
        "{out}"
    );
    lines
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn hex(id: &str) -> &str {
    id.trim_start_matches("sha256:")
}

#[test]
fn the_image_id_is_the_config_digest_everywhere() {
    let Some(t) = context() else { return };
    let iid = t.path("iid");
    let meta = t.path("meta.json");
    let id = t.build(&[
        "-t",
        "idtest:1",
        "--iidfile",
        &iid.to_string_lossy(),
        "--metadata-file",
        &meta.to_string_lossy(),
    ]);
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id);
    let root = t.root();
    let (inspected, _) = run_ok(&root, &["inspect", "--format", "{{.Id}}", "idtest:1"], &[]);
    assert_eq!(inspected, id);
    let (manifest, _) = run_ok(
        &root,
        &["inspect", "--format", "{{.Digest}}", "idtest:1"],
        &[],
    );
    assert_ne!(manifest, id);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    assert_eq!(meta["containerimage.config.digest"], id.as_str());
    assert_eq!(meta["containerimage.digest"], manifest.as_str());
    assert_eq!(
        meta["containerimage.descriptor"]["digest"],
        manifest.as_str()
    );
    // -q prints the same line, alone.
    let ctx = t.context().to_string_lossy().into_owned();
    // Progress names the image by its ID too (JSON keeps the manifest digest beside it).
    let plain = ["build", "--progress", "plain", "-t", "idtest:1", &ctx];
    let (_, progress) = run_ok(&root, &plain, &[]);
    assert!(
        progress.contains(&format!("naming to idtest:1 done ({id})")),
        "{progress}"
    );
    let json = ["build", "--progress", "json", "-t", "idtest:1", &ctx];
    let (_, events) = run_ok(&root, &json, &[]);
    let written: serde_json::Value = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "image_written")
        .expect("an image_written event");
    assert_eq!(
        (written["id"].as_str(), written["digest"].as_str()),
        (Some(id.as_str()), Some(manifest.as_str()))
    );
    let (quiet, err) = run_ok(&root, &["build", "-q", "-t", "idtest:1", &ctx], &[]);
    assert_eq!((quiet.as_str(), err.as_str()), (id.as_str(), ""));
    // images: IMAGE ID and DIGEST columns; -q the IDs.
    let rows = images(&t, &[]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0][..3],
        ["idtest:1", &hex(&id)[..12], &hex(&manifest)[..12]]
    );
    let full = images(&t, &["--no-trunc", "--digests"]);
    assert_eq!(full[0][..3], ["idtest:1", id.as_str(), manifest.as_str()]);
    assert_eq!(run_ok(&root, &["images", "-q"], &[]).0, hex(&id)[..12]);
    assert_eq!(run_ok(&root, &["images", "-q", "--no-trunc"], &[]).0, id);
    // Commands take the ID whole, bare, or as a prefix.
    for reference in [id.as_str(), hex(&id), &hex(&id)[..6]] {
        let (shown, _) = run_ok(
            &root,
            &["inspect", "--format", "{{.Digest}}", reference],
            &[],
        );
        assert_eq!(shown, manifest, "{reference}");
    }
    run_ok(&root, &["tag", &hex(&id)[..8], "idtest:2"], &[]);
    let (history, _) = run_ok(&root, &["history", "-q", "idtest:2"], &[]);
    assert_eq!(history.lines().next(), Some(&hex(&id)[..12]));
    let saved = t.path("saved.tar");
    run_ok(
        &root,
        &["save", "-o", &saved.to_string_lossy(), &hex(&id)[..8]],
        &[],
    );
    // Two names: removing by ID needs --force, as in docker.
    let err = run_fails(&root, &["rmi", &hex(&id)[..8]], &[]);
    assert!(err.contains("idtest:1, idtest:2"), "{err}");
    let (removed, _) = run_ok(&root, &["rmi", "-f", &id], &[]);
    assert_eq!(removed, "Untagged: idtest:1\nUntagged: idtest:2");
}

#[test]
fn an_image_built_without_a_name_is_listed_found_and_removed_by_id() {
    let Some(t) = context() else { return };
    let id = t.build(&[]);
    let root = t.root();
    let rows = images(&t, &[]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][..2], ["<none>", &hex(&id)[..12]]);
    let (cmd, _) = run_ok(
        &root,
        &["inspect", "--format", "{{.Config.Cmd}}", &hex(&id)[..10]],
        &[],
    );
    assert_eq!(cmd, "[/a]");
    let (removed, _) = run_ok(&root, &["rmi", &hex(&id)[..10]], &[]);
    assert_eq!(removed, format!("Deleted: {id}"));
    assert!(images(&t, &[]).is_empty());
    let err = run_fails(&root, &["inspect", &id], &[]);
    assert!(err.contains("not found"), "{err}");
    // Built again: listed again, until a prune takes it, as `docker image prune` does.
    assert_eq!(t.build(&[]), id);
    assert_eq!(images(&t, &[]).len(), 1);
    run_ok(&root, &["prune", "--force"], &[]);
    assert!(images(&t, &[]).is_empty(), "a dangling image is pruned");
    // Named, it stays.
    t.build(&["-t", "kept:1"]);
    run_ok(&root, &["prune", "--force"], &[]);
    assert_eq!(images(&t, &[])[0][0], "kept:1");
}

#[test]
fn podman_reports_the_same_image_id() {
    let Some(t) = context() else { return };
    if !have("podman") {
        return;
    }
    let archive = t.path("image.tar");
    let out = format!("type=docker,dest={},name=podid:1", archive.display());
    let id = t.build(&["-o", &out]);
    podman(
        &t.dir.path().join("podman"),
        &["load", "-i", &archive.to_string_lossy()],
    );
    let listed = podman(
        &t.dir.path().join("podman"),
        &["images", "--no-trunc", "--format", "{{.ID}}"],
    );
    // podman prints the ID with or without `sha256:` depending on its version.
    assert_eq!(hex(listed.trim()), hex(&id), "{listed}");
}
