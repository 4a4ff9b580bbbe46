//! `RUN`: the step's root (overlay or native, see `step_root.rs`) handed to the sandbox
//! with the process environment BuildKit gives (ENV + build args in scope, proxy
//! variables, default `PATH`, `HOSTNAME`, `HOME`), the user resolved in the image,
//! `--network`, the `--mount`s (cache mounts kept in the store between builds,
//! tmpfs) and the build's limits (a cgroup per step, see `limits.rs`). Output streams
//! to progress; a failure reports the command, its exit code and the last lines it
//! printed, and the limit it hit, if any.

use std::collections::VecDeque;
use std::path::PathBuf;

use super::default_network;
use super::env::Layer;
use super::error::ExecError;
use super::events::{BuildEvent, Reporter, StepId};
use super::limits::limit_failure;
use super::mounts::{self, StepMounts};
use super::sandbox::{netpool, network, ExitStatus, Network, SandboxSpec};
use super::stage_env::StageEnv;
use super::step_root::Committed;
use super::step_user::user_in;
use super::users::User;
use crate::image::add_env;
use crate::plan::{proxy_env, Platform, RunOp, Step, DEFAULT_PATH};

/// A step's `/etc/hosts`: loopback names, then each `--add-host` as `IP\tNAME`.
fn hosts_file(extra: &[(String, String)]) -> String {
    let mut text =
        format!("127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (name, ip) in extra {
        text.push_str(&format!("{ip}\t{name}\n"));
    }
    text
}

/// The hostname BuildKit gives RUN steps.
pub const HOSTNAME: &str = "buildkitsandbox";

/// Lines of output kept for the error report of a failing step.
const TAIL_LINES: usize = 20;

/// Runs one `RUN` on a root holding `layers`; returns what its commit made (no layer
/// if it changed nothing).
pub fn run_step(
    env: &StageEnv<'_>,
    layers: &[Layer],
    op: &RunOp,
    step: &Step,
    id: &StepId,
) -> Result<Committed, ExecError> {
    let platform = &step.state.platform;
    let binfmt = emulation_of(env, platform)?;
    let mut step_root = env.roots.root(layers)?;
    let root = step_root.target();
    let user = user_in(&root, &step.state.user)?;
    let step_mounts = mounts::prepare(env, &op.mounts, &step.state.workdir)?;
    let mode = op
        .network
        .as_deref()
        .or(env.build.options.network.as_deref());
    let network = step_network(env, mode, binfmt.is_some())?;
    let mut spec = sandbox_spec(env, op, step, &user, &step_mounts, root, &network)?;
    spec.binfmt = binfmt;
    if op.security.as_deref() == Some("insecure") {
        // Granted by `--allow security.insecure` (the plan checked), but not widened.
        env.build.reporter.event(BuildEvent::Note {
            message:
                "RUN --security=insecure runs in the default sandbox: rbuild has no privileged mode"
                    .to_owned(),
        });
    }
    let mut log = StepLog::new(env.build.reporter, id);
    let status = env
        .build
        .executor
        .run(&spec, &mut |bytes: &[u8]| log.push(bytes))
        .map_err(|e| match e {
            super::sandbox::Error::Cancelled => ExecError::Interrupted,
            e => ExecError::Sandbox(e),
        })?;
    let tail = log.finish();
    drop(step_mounts);
    step_root.unmount()?;
    check_status(env, op, &status, tail)?;
    step_root.commit(&env.write())
}

/// What the sandbox runs: the command, as `user`, with the step's environment,
/// network, mounts and limits, on `root`.
fn sandbox_spec(
    env: &StageEnv<'_>,
    op: &RunOp,
    step: &Step,
    user: &User,
    step_mounts: &StepMounts,
    root: PathBuf,
    network: &StepNetwork<'_>,
) -> Result<SandboxSpec, ExecError> {
    let options = env.build.options;
    Ok(SandboxSpec {
        rootfs: root,
        argv: op.argv.clone(),
        env: step_env(env, step, user, step_mounts),
        cwd: step.state.workdir.clone(),
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids.clone(),
        hostname: HOSTNAME.to_owned(),
        network: network.network.clone(),
        mounts: step_mounts.mounts.clone(),
        hosts: hosts_file(&options.add_hosts),
        resolv_conf: network.resolv_conf.clone(),
        binfmt: None,
        timeout: None,
        limits: options.limits.clone(),
        cgroup: env
            .build
            .cgroups
            .place_for(&options.limits, env.build.reporter)?,
    })
}

/// How a `RUN` of `platform` runs (a note when emulated); the registration the
/// sandbox makes for the step alone, if any.
fn emulation_of(env: &StageEnv<'_>, platform: &Platform) -> Result<Option<String>, ExecError> {
    use super::emulation::Emulation;
    let (name, how, registration) = match super::emulation::check(platform)? {
        Emulation::Native => return Ok(None),
        Emulation::Private { name, registration } => {
            (name, "for this step only", Some(registration))
        }
        Emulation::Host(name) => (name, "registered on this host", None),
    };
    env.build.reporter.event(BuildEvent::Note {
        message: format!("RUN for {platform} runs under QEMU user emulation ({name}, {how})"),
    });
    Ok(registration)
}

/// The process environment with what the mounts add: secret variables, and
/// `SSH_AUTH_SOCK` unless the step sets it.
fn step_env(env: &StageEnv<'_>, step: &Step, user: &User, step_mounts: &StepMounts) -> Vec<String> {
    let mut process = process_env(env, step, user);
    for var in &step_mounts.env {
        let (key, value) = var.split_once('=').unwrap_or((var, ""));
        add_env(&mut process, key, value);
    }
    if let Some(sock) = &step_mounts.ssh_auth_sock {
        if !process.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
            add_env(&mut process, "SSH_AUTH_SOCK", sock);
        }
    }
    process
}

/// The step's output, line by line to progress, its last lines kept for an error.
struct StepLog<'a> {
    reporter: &'a dyn Reporter,
    id: &'a StepId,
    /// Bytes after the last newline.
    partial: Vec<u8>,
    tail: VecDeque<String>,
}

impl<'a> StepLog<'a> {
    fn new(reporter: &'a dyn Reporter, id: &'a StepId) -> Self {
        StepLog {
            reporter,
            id,
            partial: Vec::new(),
            tail: VecDeque::new(),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(pos) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            self.line(line.clone());
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(line);
        }
    }

    /// The last lines, an unfinished one included.
    fn finish(mut self) -> Vec<String> {
        if !self.partial.is_empty() {
            let line = String::from_utf8_lossy(&self.partial).into_owned();
            self.line(line.clone());
            self.tail.push_back(line);
        }
        self.tail.into()
    }

    fn line(&self, line: String) {
        self.reporter.event(BuildEvent::StepLog {
            id: self.id.clone(),
            line,
        });
    }
}

/// The step's failure, if it failed: the limit it hit, or its exit code.
fn check_status(
    env: &StageEnv<'_>,
    op: &RunOp,
    status: &ExitStatus,
    tail: Vec<String>,
) -> Result<(), ExecError> {
    let command = op.argv.join(" ");
    if let Some(e) = limit_failure(status, &env.build.options.limits, &command, &tail) {
        return Err(e);
    }
    if !status.success() {
        return Err(ExecError::RunFailed {
            command,
            code: status.code,
            tail,
        });
    }
    Ok(())
}

/// The environment of the process: the stage's ENV and the build args in scope (already
/// merged by the plan), proxy variables from the build args, then defaults.
fn process_env(env: &StageEnv<'_>, step: &Step, user: &User) -> Vec<String> {
    let mut vars = step.state.env.clone();
    if let Some(proxies) = proxy_env(&env.build.options.build_args) {
        for (k, v) in proxies {
            if !vars.iter().any(|e| e.split('=').next() == Some(k.as_str())) {
                vars.push(format!("{k}={v}"));
            }
        }
    }
    let has = |vars: &[String], key: &str| vars.iter().any(|e| e.split('=').next() == Some(key));
    if !has(&vars, "PATH") {
        add_env(&mut vars, "PATH", DEFAULT_PATH);
    }
    if !has(&vars, "HOSTNAME") {
        add_env(&mut vars, "HOSTNAME", HOSTNAME);
    }
    if !has(&vars, "HOME") {
        add_env(
            &mut vars,
            "HOME",
            user.home
                .as_deref()
                .filter(|h| !h.is_empty())
                .unwrap_or("/"),
        );
    }
    vars
}

/// A step's network: the sandbox's, the step's `resolv.conf`, and on the default
/// network the lease of the build's namespace it joins (back to the pool on drop).
struct StepNetwork<'e> {
    network: Network,
    resolv_conf: String,
    _lease: Option<netpool::Lease<'e>>,
}

/// The step's network for its `--network` (or the build's): `host` (granted by the
/// plan's entitlement check, or the user's build-wide choice), `none`, else the
/// default: one of the build's pooled namespaces (`default_network::backend`).
fn step_network<'e>(
    env: &StageEnv<'e>,
    mode: Option<&str>,
    emulated: bool,
) -> Result<StepNetwork<'e>, ExecError> {
    let host = || std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let (network, resolv_conf, lease) = match mode.unwrap_or("default") {
        "none" => (Network::None, String::new(), None),
        "host" => (Network::Host, host(), None),
        // An emulated step's network namespace must belong to its own user namespace
        // (see `sandbox::binfmt`): a namespace of its own behind its own pasta.
        _ if emulated => {
            let pasta = default_network::pasta_path()?;
            (Network::Private(pasta), network::resolv_conf(&host()), None)
        }
        _ => {
            let backend = default_network::backend()?;
            let lease = env.build.netns.lease(&backend).map_err(|e| {
                ExecError::Sandbox(super::sandbox::Error::Setup {
                    op: super::sandbox::SetupOp::Network,
                    path: match &backend {
                        netpool::Backend::Pasta(pasta) => pasta.display().to_string(),
                        netpool::Backend::Veth(tools) => tools.nft.display().to_string(),
                    },
                    source: e,
                })
            })?;
            let resolv_conf = default_network::resolv_conf(&backend, &host());
            (Network::Joined(lease.path()), resolv_conf, Some(lease))
        }
    };
    Ok(StepNetwork {
        network,
        resolv_conf,
        _lease: lease,
    })
}

/// The pooled namespace for the default network when the plan has RUN steps that use
/// it, attached while the first steps are prepared.
pub fn prewarm_network(env: &super::env::BuildEnv<'_>, plan: &crate::plan::Plan) {
    let runs = plan
        .order
        .iter()
        .filter_map(|&i| plan.stages.get(i)?.as_ref())
        .flat_map(|stage| &stage.steps)
        .filter_map(|step| match &step.op {
            crate::plan::Op::Run(run) => Some(run),
            _ => None,
        });
    let mode = |run: &RunOp| run.network.clone().or(env.options.network.clone());
    let defaults = runs.filter(|run| !matches!(mode(run).as_deref(), Some("none" | "host")));
    if defaults.count() > 0 {
        if let Ok(backend) = default_network::backend() {
            env.netns.prewarm(&backend);
        }
    }
}
