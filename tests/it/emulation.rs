//! Foreign-platform `RUN` steps under QEMU, registered in each step's own
//! `binfmt_misc` instance: a two-platform build pushed as one index whose arm64 image
//! ran its `RUN` emulated, with no emulator in any layer and no registration left on
//! the host. (The rootless variant is in `rootless.rs`; that a cross-compiling build
//! stage runs natively, in `platform.rs`.)

use std::io::Read;
use std::path::Path;

use crate::platform::{binfmt_entries, emulated_base, unpacked};
use crate::pushpull::skopeo;
use crate::registry::digest;
use crate::support::{have, TestContext};

#[test]
fn two_platforms_with_an_emulated_run_push_an_index_of_each_machines_uname() {
    if !have("umoci") {
        return;
    }
    let Some((reg, base)) = emulated_base() else {
        return;
    };
    let t = TestContext::new(&format!("FROM {base}\nRUN uname -m > /arch\n"), &[]);
    let app = format!("{}/emulated:1", reg.host());
    let before = binfmt_entries();
    let stderr = t.build_log(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        &app,
        "--push",
    ]);
    assert_eq!(
        binfmt_entries(),
        before,
        "binfmt_misc registrations changed"
    );
    // Only the arm64 RUN was emulated.
    assert_eq!(stderr.matches("QEMU user emulation").count(), 1, "{stderr}");
    let layout = t.path("pulled");
    skopeo(&[
        "copy",
        "--quiet",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{app}"),
        &format!("oci:{}:all", layout.display()),
    ]);
    let index = blob_json(&layout, &top_digest(&layout));
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 2, "{index}");
    let qemu = std::fs::read("/usr/bin/qemu-aarch64-static").expect("qemu-aarch64-static");
    let qemu_digest = digest(&qemu);
    for (m, (arch, uname)) in manifests
        .iter()
        .zip([("amd64", "x86_64"), ("arm64", "aarch64")])
    {
        assert_eq!(m["platform"]["architecture"], arch, "{index}");
        let manifest = blob_json(&layout, m["digest"].as_str().expect("digest"));
        let config = blob_json(
            &layout,
            manifest["config"]["digest"].as_str().expect("config"),
        );
        assert_eq!(config["architecture"], arch);
        for layer in manifest["layers"].as_array().expect("layers") {
            for (path, bytes) in layer_files(&layout, layer) {
                assert!(!path.contains("qemu"), "{arch}: {path} in a layer");
                assert_ne!(digest(&bytes), qemu_digest, "{arch}: {path} is QEMU");
            }
        }
        let text = std::fs::read_to_string(unpacked(&t, &app, arch).join("arch")).expect("/arch");
        assert_eq!(text.trim(), uname);
    }
}

/// The digest of the layout's tagged index.
fn top_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("JSON");
    index["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_owned()
}

/// The JSON blob `digest` of the layout.
fn blob_json(layout: &Path, digest: &str) -> serde_json::Value {
    serde_json::from_slice(&blob(layout, digest)).expect("JSON blob")
}

/// The bytes of blob `digest`.
fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every entry of a layer (gzip or uncompressed): its path and contents.
fn layer_files(layout: &Path, layer: &serde_json::Value) -> Vec<(String, Vec<u8>)> {
    let raw = blob(layout, layer["digest"].as_str().expect("layer digest"));
    let media = layer["mediaType"].as_str().unwrap_or_default();
    let tar: Box<dyn Read> = if media.ends_with("gzip") {
        Box::new(flate2::read::GzDecoder::new(&raw[..]))
    } else {
        assert!(media.ends_with("tar"), "{media}");
        Box::new(&raw[..])
    };
    let mut archive = tar::Archive::new(tar);
    let mut files = Vec::new();
    for entry in archive.entries().expect("layer entries") {
        let mut entry = entry.expect("layer entry");
        let path = entry.path().expect("path").display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("entry bytes");
        files.push((path, bytes));
    }
    files
}

#[test]
fn an_emulated_step_keeps_the_sandboxs_protections() {
    let Some((_reg, base)) = emulated_base() else {
        return;
    };
    // Its own user namespace maps every id to itself; the rest is the root sandbox's.
    let script = "cat /proc/self/uid_map > /uid_map; \
         grep -E '^(NoNewPrivs|Seccomp|CapEff|CapBnd):' /proc/self/status > /status; \
         ls /sys/class/net > /nets; grep -c cgroup /proc/self/mounts > /cgroups || true; \
         ls /proc/sys/fs/binfmt_misc > /binfmt 2>&1 || true; \
         mknod /dev/shm/null c 1 3 2> /mknod || echo refused >> /mknod";
    let t = TestContext::new(&format!("FROM {base}\nRUN {script}\n"), &[]);
    let out = t.path("out");
    t.build(&[
        "--platform",
        "linux/arm64",
        "-o",
        &format!("type=local,dest={}", out.display()),
    ]);
    let read = |rel: &str| std::fs::read_to_string(out.join(rel)).expect(rel);
    assert_eq!(
        read("uid_map").split_whitespace().collect::<Vec<_>>(),
        ["0", "0", "4294967295"]
    );
    let status = read("status");
    for line in [
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
        "CapEff:\t00000000a80425fb",
        "CapBnd:\t00000000a80425fb",
    ] {
        assert!(status.contains(line), "{line} in {status}");
    }
    // The step's network namespace is its own (pasta's tap and lo), its sysfs too:
    // no host interface, no host cgroup tree, no binfmt_misc.
    let nets = read("nets");
    assert!(nets.lines().all(|n| n == "lo" || n == "eth0"), "{nets}");
    assert_eq!(read("cgroups").trim(), "0");
    assert!(!read("binfmt").contains("qemu"), "{}", read("binfmt"));
    assert!(read("mknod").contains("refused"), "{}", read("mknod"));
}
