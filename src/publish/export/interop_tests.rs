//! The store and the exports read by independent tools: skopeo, umoci, oci-image-tool
//! and podman (and docker when a daemon answers). A missing tool skips its assertions
//! with a printed reason, except with `CI=true`, where it fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::*;
use crate::digest::Digest;
use crate::image::{media_types, Format, ImageConfig, LayerDescriptor};
use crate::publish::{assemble, ManifestRef};

const HELLO: &[u8] = b"hello from rbuild\n";

/// `name` on PATH, or `None` with a printed reason (a failure in CI).
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is required when CI=true (apt-get install -y {name})"
        );
        eprintln!("skipping {name} checks: {name} is not installed");
    }
    found
}

/// Runs a command, asserts success, returns stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A single-layer image: `/hello.txt` in a gzip tar made with the tar crate and gzip.
fn tiny_image(store: &Store, format: Format) -> ManifestRef {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(HELLO.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    builder
        .append_data(&mut header, "hello.txt", HELLO)
        .unwrap();
    let layer_tar = builder.into_inner().unwrap();
    let mut gzip = Command::new("gzip")
        .args(["-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip is needed to make a test layer");
    {
        use std::io::Write;
        let mut stdin = gzip.stdin.take().unwrap();
        stdin.write_all(&layer_tar).unwrap();
    }
    let gz = gzip.wait_with_output().unwrap().stdout;
    let (digest, size) = store.put_bytes(&gz).unwrap();
    let mut config = ImageConfig {
        created: Some("2024-01-01T00:00:00Z".into()),
        architecture: "amd64".into(),
        os: "linux".into(),
        ..Default::default()
    };
    config.config.cmd = Some(vec!["/hello.txt".into()]);
    config.rootfs.diff_ids.push(Digest::of(&layer_tar));
    let layers = [LayerDescriptor {
        digest,
        size,
        media_type: media_types::OCI_LAYER_GZIP.into(),
    }];
    assemble(store, &config, &layers, format, &Default::default()).unwrap()
}

fn name(s: &str) -> ImageName {
    ImageName::parse(s).unwrap()
}

fn skopeo_inspect(target: &str) -> serde_json::Value {
    serde_json::from_str(&run(Command::new("skopeo").args(["inspect", target]))).unwrap()
}

fn umoci_unpack(image: &str, bundle: &Path) {
    run(Command::new("umoci")
        .args(["unpack", "--image", image])
        .arg(bundle));
    assert_eq!(
        std::fs::read(bundle.join("rootfs/hello.txt")).unwrap(),
        HELLO
    );
}

#[test]
fn the_store_is_an_oci_layout_for_other_tools() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let image = tiny_image(&store, Format::Oci);
    store.set_name(&name("app:1"), &image.descriptor).unwrap();
    let root_s = root.display().to_string();

    if tool("skopeo").is_some() {
        let info = skopeo_inspect(&format!("oci:{root_s}:app:1"));
        assert_eq!(info["Digest"], image.descriptor.digest.to_string());
        assert_eq!(info["Architecture"], "amd64");
        assert_eq!(info["Layers"].as_array().unwrap().len(), 1);
    }
    if tool("umoci").is_some() {
        umoci_unpack(&format!("{root_s}:app:1"), &dir.path().join("bundle"));
    }
    if tool("oci-image-tool").is_some() {
        // The extra directories (snapshots/, tmp/, locks/...) do not bother it.
        run(Command::new("oci-image-tool")
            .args(["validate", "--type", "image", "--ref", "name=app:1"])
            .arg(&root));
    }
}

#[test]
fn oci_export_is_read_by_other_tools() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let image = tiny_image(&store, Format::Oci);
    let images = [ArchiveImage::new(
        image.descriptor.clone(),
        vec![name("app:1")],
    )];

    let layout = dir.path().join("layout");
    export_oci_dir(&store, &images, &layout).unwrap();
    let tar_path = dir.path().join("image.tar");
    let file = std::fs::File::create(&tar_path).unwrap();
    export_oci_tar(&store, &images, file).unwrap();

    // Exactly the image's blobs: manifest, config, one layer.
    let blobs = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 3);
    let index: Index =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = &index.manifests[0];
    assert_eq!(entry.digest, image.descriptor.digest);
    assert_eq!(entry.annotations[REF_NAME_ANNOTATION], "1");
    assert_eq!(
        entry.annotations[CONTAINERD_NAME_ANNOTATION],
        "docker.io/library/app:1"
    );

    let layout_s = layout.display().to_string();
    if tool("oci-image-tool").is_some() {
        // oci-image-tool 1.0.0-rc1 cannot validate any tar that has the ref (its tar
        // walker wraps its own stop signal: "find failed: unable to walk: end of walk",
        // also for a GNU tar of a valid layout), so validate the tar once unpacked by
        // GNU tar, which also checks the archive itself.
        let unpacked = dir.path().join("unpacked");
        std::fs::create_dir(&unpacked).unwrap();
        run(Command::new("tar")
            .arg("-xf")
            .arg(&tar_path)
            .arg("-C")
            .arg(&unpacked));
        for target in [&layout, &unpacked] {
            run(Command::new("oci-image-tool")
                .args(["validate", "--type", "image", "--ref", "name=1"])
                .arg(target));
        }
    }
    if tool("skopeo").is_some() {
        let info = skopeo_inspect(&format!("oci-archive:{}:1", tar_path.display()));
        assert_eq!(info["Digest"], image.descriptor.digest.to_string());
        let info = skopeo_inspect(&format!("oci:{layout_s}:1"));
        assert_eq!(info["Digest"], image.descriptor.digest.to_string());
    }
    if tool("umoci").is_some() {
        umoci_unpack(&format!("{layout_s}:1"), &dir.path().join("bundle"));
    }
}

/// `podman` with a private store under `dir`, so tests never touch the host's images.
fn podman(dir: &Path) -> Command {
    let mut cmd = Command::new("podman");
    cmd.arg("--root")
        .arg(dir.join("podman-root"))
        .arg("--runroot")
        .arg(dir.join("podman-run"))
        .args(["--storage-driver", "vfs", "--events-backend", "none"]);
    cmd
}

#[test]
fn docker_archive_is_loaded_by_podman() {
    for format in [Format::Oci, Format::Docker] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let image = tiny_image(&store, format);
        let archive = dir.path().join("docker.tar");
        let file = std::fs::File::create(&archive).unwrap();
        let images = [ArchiveImage::new(
            image.descriptor.clone(),
            vec![name("app:1")],
        )];
        export_docker(&store, &images, file).unwrap();
        let archive_s = archive.display().to_string();

        if tool("skopeo").is_some() {
            let info = skopeo_inspect(&format!("docker-archive:{archive_s}"));
            assert_eq!(info["RepoTags"], serde_json::json!([]), "{info}");
            assert_eq!(info["Architecture"], "amd64");
        }
        if tool("podman").is_some() {
            // `podman load` (4.3) tries the OCI archive reading first, so the archive's
            // index.json is what it reads; `pull docker-archive:` forces manifest.json
            // (with the compressed layers) through the docker-archive reader.
            for (i, how) in [["load", "-i"], ["pull", "-q"]].iter().enumerate() {
                let store_dir = dir.path().join(format!("podman{i}"));
                let source = match how[0] {
                    "pull" => format!("docker-archive:{archive_s}"),
                    _ => archive_s.clone(),
                };
                run(podman(&store_dir).args(how).arg(&source));
                let listed = run(podman(&store_dir).args([
                    "images",
                    "--no-trunc",
                    "--format",
                    "{{.ID}} {{.Repository}}:{{.Tag}}",
                ]));
                // podman's image ID is the config digest: the config came through intact.
                // The OCI reading takes io.containerd.image.name; the docker-archive one
                // qualifies the RepoTag `app:1` as podman does any short name (as it
                // does for archives `docker save` writes).
                let repo = match how[0] {
                    "pull" => "localhost/app:1",
                    _ => "docker.io/library/app:1",
                };
                let expected = format!("{} {repo}", image.config.digest);
                assert_eq!(listed.trim(), expected, "{format}, podman {}", how[0]);
            }
        }
    }
}

#[test]
fn docker_archive_is_loaded_by_docker() {
    // Docker is not among the required tools: it needs a running daemon.
    let answers = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !answers {
        eprintln!("skipping docker load checks: no docker daemon answers");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let image = tiny_image(&store, Format::Oci);
    let tag = "rbuild-interop-test/export:1";
    let archive = dir.path().join("docker.tar");
    let file = std::fs::File::create(&archive).unwrap();
    let images = [ArchiveImage::new(image.descriptor.clone(), vec![name(tag)])];
    export_docker(&store, &images, file).unwrap();
    run(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let id = run(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", tag]));
    let _ = Command::new("docker").args(["rmi", tag]).output();
    // The classic store reports the config digest, the containerd store the manifest's.
    let id = id.trim();
    assert!(
        id == image.config.digest.to_string() || id == image.descriptor.digest.to_string(),
        "{id}"
    );
}
