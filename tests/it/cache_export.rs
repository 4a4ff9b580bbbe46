//! `--cache-to` / `--cache-from` (issue 17): a cache exported by one store is taken
//! whole by a fresh store building a copy of the context at another path (the keys
//! hold nothing store-local), through a registry or a local directory; an imported
//! hit downloads nothing until something reads its layer (the image keeps it in the
//! registry: a lazy blob, mounted by a push there); `mode=min` leaves out the
//! builder stage; a damaged cache is a warning, never a wrong hit.

use std::path::Path;

use crate::registry::{available, Fault, FaultProxy, Registry, Rule};
use crate::support::{build_at_epoch, busybox, manifest_digest, rbuild_in, run_ok, TestContext};

/// A builder stage whose result the final stage copies.
const REST: &str = "FROM base AS builder\nCOPY src/a.txt /src/a.txt\n\
RUN cat /src/a.txt > /built.txt && echo built-at-$(date +%N) >> /built.txt\n\
FROM base\nCOPY --from=builder /built.txt /app/built.txt\nCOPY app.txt /app/app.txt\n\
RUN cat /app/app.txt /app/built.txt > /app/all.txt\n";

const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "0");

fn project() -> Option<TestContext> {
    busybox(REST, &[("src/a.txt", "a\n"), ("app.txt", "app 1\n")])
}

/// A copy of `t`'s context at another path, with a store of its own.
fn elsewhere(t: &TestContext) -> TestContext {
    let other = TestContext::new("", &[]);
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", t.context().display()))
        .arg(other.context())
        .status()
        .expect("cp");
    assert!(status.success());
    other
}

/// Builds `t`'s context with `args`; (image ID, stderr).
fn build(t: &TestContext, args: &[&str]) -> (String, String) {
    build_at_epoch(t, args, EPOCH.1)
}

/// Steps that ran (`#S.N DONE`, the `FROM`s, step 0, left out).
fn ran(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(" DONE ") && !l.split(' ').next().unwrap_or("").ends_with(".0"))
        .collect()
}

fn cached_from(stderr: &str, from: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.ends_with(&format!("CACHED ({from})")))
        .count()
}

/// Keyed steps of the Dockerfile: base 4, builder 2, final 3.
const STEPS: usize = 9;

/// Layer GETs the proxy saw.
fn blob_gets(proxy: &FaultProxy) -> Vec<String> {
    proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.target.contains("/blobs/sha256:"))
        .map(|r| r.target)
        .collect()
}

/// The layer digests of image `id` in store `root`.
fn image_layers(root: &Path, id: &str) -> Vec<String> {
    let digest = manifest_digest(root, id);
    let hex = digest.trim_start_matches("sha256:");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("blobs/sha256").join(hex)).unwrap())
            .unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// The manifest of the cache layout at `dir`, as JSON.
fn cache_manifest(dir: &Path) -> serde_json::Value {
    let json = |path: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let index = json(&dir.join("index.json"));
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    json(
        &dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
}

/// The layer digests of the cache layout at `dir`.
fn cache_layers(dir: &Path) -> Vec<String> {
    cache_manifest(dir)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Rewrites the records of the cache layout at `dir` with `edit`, and the manifest
/// and `index.json` to match.
fn rewrite_description(dir: &Path, edit: impl Fn(&mut Vec<serde_json::Value>)) {
    let blobs = dir.join("blobs/sha256");
    let put = |value: &serde_json::Value| -> (String, usize) {
        let bytes = serde_json::to_vec(value).unwrap();
        let digest = crate::registry::digest(&bytes);
        std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), &bytes).unwrap();
        (digest, bytes.len())
    };
    let mut manifest = cache_manifest(dir);
    let config = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let mut description: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blobs.join(config)).unwrap()).unwrap();
    let mut records = description["records"].as_array().unwrap().clone();
    edit(&mut records);
    description["records"] = records.into();
    let (digest, size) = put(&description);
    manifest["config"]["digest"] = digest.into();
    manifest["config"]["size"] = size.into();
    let (digest, size) = put(&manifest);
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"] = digest.into();
    index["manifests"][0]["size"] = size.into();
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn a_registry_cache_serves_a_fresh_store_on_another_path_without_downloading_hits() {
    if !available(&[]) {
        return;
    }
    let Some(a) = project() else { return };
    let reg = Registry::plain();
    let proxy = FaultProxy::to(&reg);
    let cache = format!("{}/cache/app:buildcache", proxy.host());
    let to = format!("type=registry,ref={cache},mode=max");
    let (id_a, _) = build(&a, &["--cache-to", &to]);

    // Store B: a copy of the context elsewhere, nothing in its store.
    let b = elsewhere(&a);
    let before = blob_gets(&proxy).len();
    // As CI does: import and export the same ref; the export finds the builder's
    // layers in the registry and neither downloads nor uploads them.
    let (id_b, stderr) = build(&b, &["--cache-from", &cache, "--cache-to", &to]);
    assert!(ran(&stderr).is_empty(), "{stderr}");
    assert_eq!(
        cached_from(&stderr, &format!("registry {cache}")),
        STEPS,
        "{stderr}"
    );
    assert_eq!(id_b, id_a, "the same image");
    assert_eq!(
        manifest_digest(&b.root(), &id_b),
        manifest_digest(&a.root(), &id_a)
    );
    // No layer came down, not even the image's (they stay in the registry: lazy
    // blobs), and the export found them all there: one GET, the cache description.
    let gets = blob_gets(&proxy).split_off(before);
    assert_eq!(gets.len(), 1, "{gets:#?}");
    let final_layers = image_layers(&a.root(), &id_a);

    // Store C: one file edited; only the steps it reaches run.
    let c = elsewhere(&a);
    std::fs::write(c.context().join("app.txt"), "app 2\n").unwrap();
    let before = blob_gets(&proxy).len();
    let (_, stderr) = build(&c, &["--cache-from", &cache]);
    let ran = ran(&stderr);
    assert_eq!(ran.len(), 2, "COPY app.txt and the RUN after it:\n{stderr}");
    assert_eq!(
        cached_from(&stderr, &format!("registry {cache}")),
        STEPS - 2
    );
    // The lowers of the RUN that ran: the image's layers below it, not the builder's.
    let gets = blob_gets(&proxy).split_off(before);
    assert_eq!(gets.len(), final_layers.len() - 2 + 1, "{gets:#?}");
}

/// The layers of image `id` in store `root` that are lazy (absent, kept by a registry).
fn lazy_layers(root: &Path, id: &str) -> Vec<String> {
    image_layers(root, id)
        .into_iter()
        .filter(|l| {
            let hex = l.trim_start_matches("sha256:");
            !root.join("blobs/sha256").join(hex).exists()
        })
        .collect()
}

fn lazy_records(root: &Path) -> usize {
    std::fs::read_dir(root.join("cache/lazy")).map_or(0, |d| d.count())
}

/// Store A's build of the project, its cache exported (`mode=max`) to a registry
/// behind a counting proxy.
struct Cached {
    a: TestContext,
    /// Kept alive for the proxy.
    reg: Registry,
    proxy: FaultProxy,
    /// The cache's reference, through the proxy.
    cache: String,
    id_a: String,
    digest_a: String,
}

fn cached_in_registry() -> Option<Cached> {
    if !available(&["skopeo"]) {
        return None;
    }
    let a = project()?;
    let reg = Registry::plain();
    let proxy = FaultProxy::to(&reg);
    let cache = format!("{}/cache/app:buildcache", proxy.host());
    let to = format!("type=registry,ref={cache},mode=max");
    let (id_a, _) = build(&a, &["--cache-to", &to]);
    let digest_a = manifest_digest(&a.root(), &id_a);
    Some(Cached {
        a,
        reg,
        proxy,
        cache,
        id_a,
        digest_a,
    })
}

#[test]
fn a_lazy_image_is_pushed_by_mount_and_its_layers_fetched_once_by_an_export() {
    let Some(Cached {
        a,
        reg: _reg,
        proxy,
        cache,
        id_a,
        digest_a,
    }) = cached_in_registry()
    else {
        return;
    };

    let b = elsewhere(&a);
    let root = b.root();
    let before = blob_gets(&proxy).len();
    let (id_b, stderr) = build(&b, &["--cache-from", &cache, "-t", "app:b"]);
    assert_eq!(cached_from(&stderr, &format!("registry {cache}")), STEPS);
    assert_eq!(id_b, id_a);
    let lazy = lazy_layers(&root, &id_b);
    assert!(
        !lazy.is_empty(),
        "the cached steps' layers stay in the registry"
    );
    assert_eq!(lazy_records(&root), lazy.len());
    let (check, _) = run_ok(&root, &["store", "check"], &[]);
    assert!(check.contains(&format!("{} lazy", lazy.len())), "{check}");
    assert!(check.ends_with("clean"), "{check}");
    let (du, _) = run_ok(&root, &["du"], &[]);
    assert!(du.contains("lazy: in a registry"), "{du}");

    // A push to the same registry mounts them: nothing comes down.
    let dest = format!("{}/team/app:1", proxy.host());
    let (pushed, stderr) = run_ok(&root, &["push", "app:b", &dest], &[]);
    assert_eq!(pushed, digest_a, "{stderr}");
    assert!(
        stderr.contains(&format!("{} mounted", lazy.len())),
        "{stderr}"
    );
    assert_eq!(blob_gets(&proxy).len() - before, 1, "the description only");

    // An export reads them: each is fetched once, and the archive is whole.
    let tar = b.path("app.tar");
    let tar_arg = tar.to_string_lossy().into_owned();
    let save = ["save", "--format", "oci-archive", "-o", &tar_arg, "app:b"];
    run_ok(&root, &save, &[]);
    run_ok(&root, &save, &[]);
    let gets = blob_gets(&proxy).split_off(before + 1);
    assert_eq!(gets.len(), lazy.len(), "{gets:#?}");
    for layer in &lazy {
        assert!(gets.iter().any(|g| g.ends_with(layer.as_str())), "{layer}");
    }
    let copied = b.path("copied");
    crate::pushpull::skopeo(&[
        "copy",
        &format!("oci-archive:{tar_arg}"),
        &format!("dir:{}", copied.display()),
    ]);
    assert_eq!(lazy_records(&root), 0);
    let (check, _) = run_ok(&root, &["store", "check"], &[]);
    assert!(
        !check.contains("lazy") && check.ends_with("clean"),
        "{check}"
    );

    // A prune that takes a lazy image forgets where its layers were.
    let c = elsewhere(&a);
    build(&c, &["--cache-from", &cache]);
    assert!(lazy_records(&c.root()) > 0);
    run_ok(&c.root(), &["prune", "--all", "--force"], &[]);
    assert_eq!(lazy_records(&c.root()), 0);
    let (check, _) = run_ok(&c.root(), &["store", "check"], &[]);
    assert!(check.ends_with("clean"), "{check}");
}

#[test]
fn a_lazy_image_is_fetched_for_another_registry_as_a_base_and_by_an_output() {
    let Some(Cached {
        a,
        reg,
        proxy,
        cache,
        id_a: _,
        digest_a,
    }) = cached_in_registry()
    else {
        return;
    };

    // Another registry (the same server under another host name) gets the layers
    // streamed through this store: each fetched once, verified.
    let b = elsewhere(&a);
    let (id_b, _) = build(&b, &["--cache-from", &cache]);
    let lazy = lazy_layers(&b.root(), &id_b);
    assert!(!lazy.is_empty());
    let before = blob_gets(&proxy).len();
    let dest = format!("{}/other/app:1", reg.host());
    let (pushed, stderr) = run_ok(&b.root(), &["push", &id_b, &dest], &[]);
    assert_eq!(pushed, digest_a, "{stderr}");
    assert_eq!(blob_gets(&proxy).len() - before, lazy.len());
    assert_eq!(lazy_records(&b.root()), 0);

    // A build FROM a lazy image fetches its layers to unpack them.
    let c = elsewhere(&a);
    build(&c, &["--cache-from", &cache, "-t", "app:c"]);
    assert!(lazy_records(&c.root()) > 0);
    let next = TestContext::new("FROM app:c\nRUN cat /app/all.txt\n", &[]);
    build_in(&c.root(), &next);
    assert_eq!(lazy_records(&c.root()), 0);
    let (check, _) = run_ok(&c.root(), &["store", "check"], &[]);
    assert!(check.ends_with("clean"), "{check}");

    // An `-o` export of a build from the cache fetches the layers it writes, once.
    let e = elsewhere(&a);
    let before = blob_gets(&proxy).len();
    let oci = e.path("e.tar");
    let output = format!("type=oci,dest={}", oci.display());
    build(&e, &["--cache-from", &cache, "-o", &output]);
    assert_eq!(lazy_records(&e.root()), 0);
    assert_eq!(blob_gets(&proxy).len() - before, 1 + lazy.len());
    let copied = e.path("copied");
    crate::pushpull::skopeo(&[
        "copy",
        &format!("oci-archive:{}", oci.display()),
        &format!("dir:{}", copied.display()),
    ]);

    // `--load` hands docker the whole image: its lazy layers are fetched first.
    let f = elsewhere(&a);
    let before = blob_gets(&proxy).len();
    let bin = f.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    crate::compat::fake_docker(&bin);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let received = f.path("received.tar");
    let ctx = f.context().to_string_lossy().into_owned();
    let env = [
        ("PATH", path.as_str()),
        ("FAKE_DOCKER_OUT", received.to_str().unwrap()),
        EPOCH,
    ];
    let args = [
        "build",
        "--load",
        "-t",
        "app:f",
        "--cache-from",
        &cache,
        &ctx,
    ];
    run_ok(&f.root(), &args, &env);
    assert_eq!(lazy_records(&f.root()), 0);
    assert_eq!(blob_gets(&proxy).len() - before, 1 + lazy.len());
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&received)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for layer in &lazy {
        let hex = layer.trim_start_matches("sha256:");
        assert!(
            listing.contains(hex),
            "{layer} not in the archive:\n{listing}"
        );
    }

    // Gone from the registry, a lazy blob is an error naming the image, layer and remote.
    let d = elsewhere(&a);
    build(&d, &["--cache-from", &cache, "-t", "app:d"]);
    proxy.add(
        Rule::new(Fault::Status(404))
            .method("GET")
            .path_contains("/blobs/"),
    );
    let tar = d.path("app.tar");
    let out = rbuild_in(
        &d.root(),
        &["save", "-o", &tar.to_string_lossy(), "app:d"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot fetch layer sha256:") && stderr.contains("/cache/app"),
        "{stderr}"
    );
}

/// Builds context `t` into store `root`.
fn build_in(root: &Path, t: &TestContext) {
    let ctx = t.context().to_string_lossy().into_owned();
    let out = rbuild_in(root, &["build", "--progress", "plain", &ctx], &[EPOCH]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "build failed:\n{stderr}");
}

#[test]
fn a_local_cache_directory_serves_a_fresh_store_and_min_leaves_the_builder_out() {
    let Some(a) = project() else { return };
    let max = a.path("cache-max");
    let min = a.path("cache-min");
    let to_max = format!("type=local,dest={},mode=max", max.display());
    let to_min = format!("type=local,dest={}", min.display());
    let (id_a, _) = build(&a, &["--cache-to", &to_max, "--cache-to", &to_min]);
    assert!(max.join("index.json").is_file() && max.join("oci-layout").is_file());

    let b = elsewhere(&a);
    let from = format!("type=local,src={}", max.display());
    let (id_b, stderr) = build(&b, &["--cache-from", &from]);
    assert!(ran(&stderr).is_empty(), "{stderr}");
    assert_eq!(
        cached_from(&stderr, &format!("local {}", max.display())),
        STEPS
    );
    assert_eq!(
        manifest_digest(&b.root(), &id_b),
        manifest_digest(&a.root(), &id_a)
    );
    // The builder's two layers are in the cache, and stay there.
    let image = image_layers(&a.root(), &id_a);
    let builder: Vec<String> = cache_layers(&max)
        .into_iter()
        .filter(|l| !image.contains(l))
        .collect();
    assert_eq!(builder.len(), 2, "{builder:?}");
    for layer in &builder {
        let hex = layer.trim_start_matches("sha256:");
        assert!(
            !b.root().join("blobs/sha256").join(hex).exists(),
            "{layer} was copied"
        );
    }

    // --explain says the same, and fetches no layer.
    let e = elsewhere(&a);
    let ctx = e.context().to_string_lossy().into_owned();
    let from = format!("type=local,src={}", max.display());
    let out = rbuild_in(
        &e.root(),
        &["build", "--explain", "--cache-from", &from, &ctx],
        &[EPOCH],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let local = format!("CACHED (local {})", max.display());
    assert_eq!(stdout.matches(&local).count(), STEPS, "{stdout}");
    for layer in cache_layers(&max) {
        let hex = layer.trim_start_matches("sha256:");
        assert!(
            !e.root().join("blobs/sha256").join(hex).exists(),
            "{layer} was copied"
        );
    }

    // mode=min: the final image's steps only; the builder stage runs again.
    let c = elsewhere(&a);
    let from = format!("type=local,src={}", min.display());
    let (id_c, stderr) = build(&c, &["--cache-from", &from]);
    let ran = ran(&stderr);
    assert_eq!(ran.len(), 2, "the builder's COPY and RUN:\n{stderr}");
    assert_eq!(
        cached_from(&stderr, &format!("local {}", min.display())),
        STEPS - 2
    );
    assert_eq!(id_c, id_a, "the final stage's hits give the same image");

    // A second export replaces the layout.
    build(&a, &["--cache-to", &to_max]);
    assert!(max.join("index.json").is_file());
}

#[test]
fn an_image_pushed_with_an_inline_cache_serves_as_one() {
    if !available(&[]) {
        return;
    }
    let Some(a) = project() else { return };
    let reg = Registry::plain();
    let proxy = FaultProxy::to(&reg);
    let image = format!("{}/team/app:1", proxy.host());
    let (id_a, _) = build(&a, &["-t", &image, "--push", "--cache-to", "type=inline"]);

    let b = elsewhere(&a);
    let before = blob_gets(&proxy).len();
    let (id_b, stderr) = build(&b, &["--cache-from", &image, "--cache-to", "type=inline"]);
    // The image's own steps are hits; the builder stage is not in it (mode=min).
    assert_eq!(
        ran(&stderr).len(),
        2,
        "the builder's COPY and RUN:\n{stderr}"
    );
    assert_eq!(
        cached_from(&stderr, &format!("registry {image}")),
        STEPS - 2
    );
    assert_eq!(id_b, id_a, "the same image, its inline cache included");
    // The image config, then the base's layers (the builder's lowers), each once; the
    // final stage's own cached layers stay in the registry (lazy).
    let gets = blob_gets(&proxy).split_off(before);
    let lazy = lazy_layers(&b.root(), &id_b);
    assert!(!lazy.is_empty());
    assert_eq!(
        gets.len(),
        image_layers(&a.root(), &id_a).len() - lazy.len() + 1,
        "{gets:#?}"
    );

    // An image without one is a warning.
    let plain = format!("{}/team/plain:1", proxy.host());
    build(&a, &["-t", &plain, "--push"]);
    let c = elsewhere(&a);
    let (_, stderr) = build(&c, &["--cache-from", &plain]);
    assert!(stderr.contains("carries no rbuild cache"), "{stderr}");
}

#[test]
fn a_damaged_or_foreign_cache_is_a_warning_and_the_steps_run() {
    let Some(a) = project() else { return };
    let dir = a.path("cache");
    build(
        &a,
        &[
            "--cache-to",
            &format!("type=local,dest={},mode=max", dir.display()),
        ],
    );
    let blobs = dir.join("blobs/sha256");
    let manifest = cache_manifest(&dir);
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.rbuild.cache.v1+json"
    );
    let config_hex = manifest["config"]["digest"].as_str().unwrap()[7..].to_owned();
    // The description's bytes no longer match their digest.
    let text = std::fs::read_to_string(blobs.join(&config_hex)).unwrap();
    std::fs::write(
        blobs.join(&config_hex),
        text.replace("\"version\":1", "\"version\":7"),
    )
    .unwrap();

    let b = elsewhere(&a);
    let from = format!("type=local,src={}", dir.display());
    let (_, stderr) = build(&b, &["--cache-from", &from]);
    assert!(stderr.contains("warning: cache local"), "{stderr}");
    assert!(stderr.contains("not used"), "{stderr}");
    assert_eq!(ran(&stderr).len(), STEPS, "{stderr}");

    // Layers the cache lost: their records are skipped, those steps run.
    let lost = a.path("lost");
    let (id_a, _) = build(
        &a,
        &[
            "--cache-to",
            &format!("type=local,dest={},mode=max", lost.display()),
        ],
    );
    let image = image_layers(&a.root(), &id_a);
    for layer in cache_layers(&lost).iter().filter(|l| !image.contains(l)) {
        let hex = layer.trim_start_matches("sha256:");
        std::fs::remove_file(lost.join("blobs/sha256").join(hex)).unwrap();
    }
    let d = elsewhere(&a);
    let (id_d, stderr) = build(
        &d,
        &[
            "--cache-from",
            &format!("type=local,src={}", lost.display()),
        ],
    );
    assert!(
        stderr.contains("that the cache does not hold: skipped"),
        "{stderr}"
    );
    assert_eq!(ran(&stderr).len(), 2, "the builder's steps:\n{stderr}");
    assert_eq!(id_d, id_a);

    // A description that lies about a layer's diff ID (rewritten with good digests):
    // the hit is taken, and the layer fails its check when the image needs it.
    let liar = a.path("liar");
    let (id_a, _) = build(
        &a,
        &[
            "--cache-to",
            &format!("type=local,dest={},mode=max", liar.display()),
        ],
    );
    let last = image_layers(&a.root(), &id_a).pop().unwrap();
    rewrite_description(&liar, |records| {
        for record in records
            .iter_mut()
            .filter(|r| r["layer"]["digest"] == last.as_str())
        {
            record["layer"]["diffId"] = format!("sha256:{}", "0".repeat(64)).into();
        }
    });
    let e = elsewhere(&a);
    let ctx = e.context().to_string_lossy().into_owned();
    let from = format!("type=local,src={}", liar.display());
    let out = rbuild_in(
        &e.root(),
        &["build", "--progress", "plain", "--cache-from", &from, &ctx],
        &[EPOCH],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("layer {last} has diff ID")),
        "{stderr}"
    );

    // An image with no inline cache.
    let c = elsewhere(&a);
    let out = c.path("image");
    build(
        &a,
        &["-o", &format!("type=oci,dest={},tar=false", out.display())],
    );
    let (_, stderr) = build(
        &c,
        &["--cache-from", &format!("type=local,src={}", out.display())],
    );
    assert!(stderr.contains("carries no rbuild cache"), "{stderr}");
    assert_eq!(ran(&stderr).len(), STEPS, "{stderr}");
}

#[test]
fn cache_flags_rbuild_cannot_honour_are_refused_by_name() {
    let t = TestContext::new("FROM scratch\n", &[]);
    let err = t.build_fails(&["--cache-to", "type=inline,mode=max"]);
    assert!(
        err.contains("type=inline,mode=max") && err.contains("mode=min"),
        "{err}"
    );
    // A destination in the test's directory, should a refusal ever let a build run.
    let dest = t.path("cache");
    let to = |keys: &str| format!("type=local,dest={},{keys}", dest.display());
    let err = t.build_fails(&["--cache-to", &to("mounts-max-size=1G")]);
    assert!(err.contains("needs mounts=true"), "{err}");
    // The cache's blobs are the image's: compression= must be the build's.
    let err = t.build_fails(&["--cache-to", &to("compression=zstd")]);
    assert!(err.contains("build with --compression zstd"), "{err}");
    let err = t.build_fails(&["--cache-to", &to("compression-level=3")]);
    assert!(err.contains("compression-level= is not supported"), "{err}");
    let err = t.build_fails(&["--cache-from", "type=gha"]);
    assert!(err.contains("type=gha"), "{err}");
}

/// An HTTP server on 127.0.0.1 that counts the requests it answers; its port.
fn counting_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("port").port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.read(&mut [0u8; 4096]);
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = "downloaded payload\n";
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (port, count)
}

#[test]
fn cache_mounts_travel_with_mounts_true_within_their_size_cap() {
    let (port, requests) = counting_server();
    let requests = move || requests.load(std::sync::atomic::Ordering::SeqCst);
    // A step that downloads into its cache mount unless the file is there.
    let run = format!(
        "FROM base\nCOPY app.txt /app.txt\n\
RUN --network=host --mount=type=cache,target=/var/cache/dl sh -c 'test -f /var/cache/dl/data \
|| wget -q -O /var/cache/dl/data http://127.0.0.1:{port}/; cat /var/cache/dl/data /app.txt'\n"
    );
    let Some(a) = busybox(&run, &[("app.txt", "app 1\n")]) else {
        return;
    };
    let allow = ["--allow", "network.host"];
    let with = a.path("with");
    let without = a.path("without");
    let tiny = a.path("tiny");
    let to = |dir: &Path, extra: &str| format!("type=local,dest={}{extra}", dir.display());
    let (_, stderr) = build(
        &a,
        &[
            allow[0],
            allow[1],
            "--cache-to",
            &to(&with, ",mounts=true"),
            "--cache-to",
            &to(&without, ""),
            "--cache-to",
            &to(&tiny, ",mounts=true,mounts-max-size=10"),
        ],
    );
    assert_eq!(requests(), 1, "{stderr}");
    assert!(stderr.contains("downloaded payload"), "{stderr}");
    assert!(
        stderr.contains("left out of the cache export: over the size cap"),
        "{stderr}"
    );
    let mounts = |dir: &Path| {
        let manifest = cache_manifest(dir);
        let hex = manifest["config"]["digest"].as_str().unwrap()[7..].to_owned();
        let description: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap())
                .unwrap();
        description["mounts"].as_array().map_or(0, Vec::len)
    };
    assert_eq!((mounts(&with), mounts(&without), mounts(&tiny)), (1, 0, 0));

    // A fresh store where the RUN runs again (its input changed): the cache mount is
    // restored from the cache that has it (no request), and only from that one.
    for (dir, new_requests) in [(&with, 0), (&without, 1)] {
        let b = elsewhere(&a);
        std::fs::write(b.context().join("app.txt"), "app 2\n").unwrap();
        let before = requests();
        let from = format!("type=local,src={}", dir.display());
        let (_, stderr) = build(&b, &[allow[0], allow[1], "--cache-from", &from]);
        assert_eq!(ran(&stderr).len(), 2, "{stderr}");
        assert!(stderr.contains("downloaded payload"), "{stderr}");
        assert_eq!(
            requests() - before,
            new_requests,
            "{}:\n{stderr}",
            dir.display()
        );
    }
}
