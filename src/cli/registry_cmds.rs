//! `rbuild pull`, `rbuild push`, `rbuild login`, `rbuild logout`, and the registry
//! flags they share with `rbuild build` (`--insecure-registry`, `--tls-verify`,
//! `--creds`, `--cert-dir`).
//!
//! Progress goes to stderr (a byte bar per blob on a terminal, else one line per blob
//! as it finishes: `progress/transfer.rs`); the digest, the data, goes to stdout. No
//! secret is ever printed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use super::progress::TransferView;
use crate::plan::Platform;
use crate::registry::{self, Client, CredentialFiles, Reference, RegistryOptions, Stored};
use crate::store::{Store, StoreConfig};

/// Flags that choose how registries are reached.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// Reach this registry (`host[:port]`) over plain HTTP; may be repeated (also
    /// `insecureRegistries` in `<store>/config.json`). Loopback registries always are.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
    /// Verify registries' TLS certificates (`--tls-verify=false` to skip).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// Credentials for every registry of this command, instead of the stored ones.
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,
    /// A directory like `/etc/docker/certs.d` (with `HOST[:PORT]/ca.crt`, client
    /// certificates) looked in before the standard ones.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// The credentials file to read (and `login` to write) instead of
    /// `$REGISTRY_AUTH_FILE`, containers' `auth.json` and Docker's `config.json`
    /// (podman's flag; the same JSON format).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

impl RegistryArgs {
    /// The client options for store `root`.
    pub fn options(&self, root: &Path) -> anyhow::Result<RegistryOptions> {
        let mut options = RegistryOptions {
            insecure: self.insecure.clone(),
            ..RegistryOptions::default()
        };
        options
            .insecure
            .extend(StoreConfig::load(root)?.insecure_registries);
        options.tls.verify = self.tls_verify;
        options.credential_files = self.credential_files();
        if let Some(dir) = &self.cert_dir {
            options.tls.cert_dirs.insert(0, dir.clone());
        }
        if let Some(creds) = &self.creds {
            let Some((user, pass)) = creds.split_once(':') else {
                bail!("--creds must be USER:PASS");
            };
            options.creds = Some((user.to_owned(), pass.to_owned()));
        }
        Ok(options)
    }
}

impl RegistryArgs {
    /// `--authfile` alone when given, else the files the environment names.
    pub fn credential_files(&self) -> CredentialFiles {
        credential_files(self.authfile.as_deref())
    }
}

/// `authfile` alone when given (read and written), else the environment's files.
fn credential_files(authfile: Option<&Path>) -> CredentialFiles {
    match authfile {
        Some(file) => CredentialFiles {
            auth_files: Vec::new(),
            docker_config: file.to_owned(),
            helper_dir: None,
        },
        None => CredentialFiles::from_env(),
    }
}

/// Arguments of `rbuild pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The image (`alpine:3.20`, `registry:5000/team/base:1`, `name@sha256:...`).
    reference: String,
    /// The platform to pull from a multi-platform image [default: this machine's].
    #[arg(long)]
    platform: Option<String>,
    /// Print only the digest.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Arguments of `rbuild push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The local image (a name, or an image ID or manifest digest).
    name: String,
    /// Where to push it [default: the name itself, e.g. `registry:5000/team/app:1`].
    dest: Option<String>,
    /// Write `{"containerimage.digest": ..., "image.name": ...}` here.
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// Print only the digest.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Arguments of `rbuild login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry (`host[:port]`; default Docker Hub).
    server: Option<String>,
    #[arg(short, long)]
    username: Option<String>,
    /// The password (prefer --password-stdin: a flag is visible to other users).
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Arguments of `rbuild logout`.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The registry (`host[:port]`; default Docker Hub).
    server: Option<String>,
    /// The credentials file to remove the login from (as `--authfile` of `login`).
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
}

fn parse_reference(text: &str) -> anyhow::Result<Reference> {
    Ok(Reference::parse(text)?)
}

/// Runs `rbuild pull`.
pub fn run_pull(root: &Path, args: &PullArgs) -> anyhow::Result<ExitCode> {
    let reference = parse_reference(&args.reference)?;
    let platform = match &args.platform {
        Some(p) => p.parse::<Platform>().context("--platform")?,
        None => Platform::host(),
    };
    let store = Store::open(root)?;
    let _gc = store.gc_shared()?;
    let client = Client::new(args.registry.options(root)?);
    let view = TransferView::new(args.quiet);
    let progress = |e: registry::TransferEvent<'_>| view.event(e);
    let pulled = registry::pull_unnamed(&client, &store, &reference, &platform, &progress);
    view.finish();
    let pulled = pulled?;
    let name = pulled
        .name
        .as_ref()
        .map_or_else(|| reference.to_string(), ToString::to_string);
    // Ready to build on, as `docker pull` leaves an image: its layers unpacked.
    let started = std::time::Instant::now();
    let layers = crate::executor::unpack_image(
        &store,
        &pulled.descriptor.digest,
        &name,
        &crate::executor::NoReporter,
    )
    .with_context(|| format!("unpacking the layers of {name}"))?;
    // Named only once its layers are in: a refused image gets no name.
    registry::name_pulled(&store, &pulled)?;
    if !args.quiet {
        let (count, bytes) = pulled.downloaded;
        super::write_stderr(&format!(
            "pulled {name} ({count} blobs, {} downloaded; {layers} layers unpacked in {:.2}s)",
            super::store_cmds::human_size(bytes),
            started.elapsed().as_secs_f64()
        ));
    }
    println!("{}", pulled.descriptor.digest);
    Ok(ExitCode::SUCCESS)
}

/// Runs `rbuild push`.
pub fn run_push(root: &Path, args: &PushArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(root)?;
    let _gc = store.gc_shared()?;
    let image = store
        .resolve(&args.name)?
        .with_context(|| format!("no image {:?} in the store", args.name))?;
    let dest = parse_reference(args.dest.as_deref().unwrap_or(&args.name))?;
    let client = Client::new(args.registry.options(root)?);
    let pushed = push_one(
        &client,
        &store,
        &image,
        &dest,
        &TransferView::new(args.quiet),
    )?;
    if let Some(path) = &args.metadata_file {
        write_metadata(path, &dest, &pushed)?;
    }
    println!("{}", pushed.digest);
    Ok(ExitCode::SUCCESS)
}

/// Pushes one stored image and reports it in `view` (used by `push` and `build
/// --push`).
pub fn push_one(
    client: &Client,
    store: &Store,
    image: &crate::image::Descriptor,
    dest: &Reference,
    view: &TransferView,
) -> anyhow::Result<registry::Pushed> {
    let pushed = registry::push(client, store, image, dest, &|e| view.event(e));
    view.finish();
    let pushed = pushed.with_context(|| format!("pushing {dest}"))?;
    if !view.is_quiet() {
        super::write_stderr(&format!(
            "pushed {dest}: {} ({} blobs uploaded, {}; {} mounted; {} already there)",
            pushed.digest,
            pushed.uploaded.0,
            super::store_cmds::human_size(pushed.uploaded.1),
            pushed.mounted,
            pushed.existing
        ));
    }
    Ok(pushed)
}

/// Fetches the lazy layers of stored image `image` (kept in a registry since a build
/// from a registry cache) before something reads them (`save`, `--load`).
pub fn fetch_lazy_layers(
    client: &Client,
    store: &Store,
    image: &crate::image::Descriptor,
    view: &TransferView,
) -> anyhow::Result<()> {
    let fetched = registry::fetch_image_blobs(client, store, image, &|e| view.event(e));
    view.finish();
    fetched.with_context(|| format!("fetching the layers of {}", image.digest))
}

/// `--metadata-file` of a push, with BuildKit's keys.
pub fn write_metadata(
    path: &Path,
    dest: &Reference,
    pushed: &registry::Pushed,
) -> anyhow::Result<()> {
    let json = serde_json::json!({
        "containerimage.digest": pushed.digest.to_string(),
        "containerimage.descriptor": {
            "mediaType": pushed.media_type,
            "digest": pushed.digest.to_string(),
            "size": pushed.size,
        },
        "image.name": dest.to_string(),
    });
    std::fs::write(path, format!("{json:#}\n"))
        .with_context(|| format!("writing {}", path.display()))
}

fn server_of(server: Option<&str>) -> anyhow::Result<String> {
    match server {
        None => Ok(registry::DOCKER_HUB.to_owned()),
        Some(s) => {
            let host = s
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            let host = host.split('/').next().unwrap_or(host);
            // Validated as the registry part of a reference.
            let reference = Reference::parse(&format!("{host}/x"))?;
            if reference.registry != host && host != "docker.io" && host != "index.docker.io" {
                bail!("{s:?} is not a registry host (expected host[:port])");
            }
            Ok(reference.registry)
        }
    }
}

/// Runs `rbuild login`.
pub fn run_login(root: &Path, args: &LoginArgs) -> anyhow::Result<ExitCode> {
    let server = server_of(args.server.as_deref())?;
    let username = match &args.username {
        Some(u) => u.clone(),
        None => prompt("Username: ")?,
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are exclusive"),
        (Some(p), false) => {
            super::write_stderr(
                "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
            );
            p.clone()
        }
        (None, true) => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the password from standard input")?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => prompt_secret("Password: ")?,
    };
    if username.is_empty() || password.is_empty() {
        bail!("a username and a password are required");
    }
    let mut options = args.registry.options(root)?;
    options.creds = Some((username.clone(), password.clone()));
    Client::new(options)
        .ping(&server)
        .with_context(|| format!("logging in to {server}"))?;
    let files = args.registry.credential_files();
    match files.login(&server, &username, &password)? {
        Stored::Helper(name) => super::write_stderr(&format!(
            "credentials for {server} stored with docker-credential-{name}"
        )),
        Stored::File(path) => super::write_stderr(&format!(
            "WARNING! Your password will be stored unencrypted in {}.\n\
             Configure a credential helper (credsStore or credHelpers in that file) to remove this warning.",
            path.display()
        )),
    }
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

fn prompt(label: &str) -> anyhow::Result<String> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{label}");
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Like [`prompt`], without echoing what is typed (when standard input is a terminal).
fn prompt_secret(label: &str) -> anyhow::Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let saved = tcgetattr(stdin.as_fd()).ok();
    if let Some(mode) = &saved {
        let mut quiet = mode.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        let _ = tcsetattr(stdin.as_fd(), OptionalActions::Now, &quiet);
    }
    let typed = prompt(label);
    if let Some(mode) = &saved {
        let _ = tcsetattr(stdin.as_fd(), OptionalActions::Now, mode);
        super::write_stderr("");
    }
    typed
}

/// Runs `rbuild logout`.
pub fn run_logout(args: &LogoutArgs) -> anyhow::Result<ExitCode> {
    let server = server_of(args.server.as_deref())?;
    let files = credential_files(args.authfile.as_deref());
    if files.logout(&server)? {
        println!("Removing login credentials for {server}");
    } else {
        super::write_stderr(&format!("not logged in to {server}"));
    }
    Ok(ExitCode::SUCCESS)
}
