//! `RUN`: the step's root (overlay or native, see `step_root.rs`) handed to the sandbox
//! with the process environment BuildKit gives (ENV + build args in scope, proxy
//! variables, default `PATH`, `HOSTNAME`, `HOME`), the user resolved in the image,
//! `--network`, the `--mount`s (cache mounts kept in the store between builds,
//! tmpfs) and the build's limits (a cgroup per step, see `limits.rs`). Output streams
//! to progress; a failure reports the command, its exit code and the last lines it
//! printed, and the limit it hit, if any.

use std::collections::VecDeque;
use std::path::Path;

use super::copy;
use super::error::ExecError;
use super::events::{BuildEvent, StepId};
use super::limits::limit_failure;
use super::sandbox::{Network, SandboxSpec};
use super::stage::{Layer, StageEnv};
use super::users::resolve_user;
use crate::image::add_env;
use crate::plan::{proxy_env, RunOp, Step, DEFAULT_PATH};

/// The hostname BuildKit gives RUN steps.
pub const HOSTNAME: &str = "buildkitsandbox";

/// Lines of output kept for the error report of a failing step.
const TAIL_LINES: usize = 20;

/// Runs one `RUN` on a root holding `layers`; returns its layer (`None` if it changed
/// nothing).
pub fn run_step(
    env: &StageEnv<'_>,
    layers: &[Layer],
    op: &RunOp,
    step: &Step,
    id: &StepId,
) -> Result<Option<Layer>, ExecError> {
    let mut step_root = env.roots.root(env, layers)?;
    let root = step_root.target();
    let passwd = read_etc(&root, "passwd");
    let group = read_etc(&root, "group");
    let user = if step.state.user.is_empty() {
        super::users::User {
            home: Some("/root".into()),
            ..Default::default()
        }
    } else {
        resolve_user(&step.state.user, &passwd, &group)?
    };
    let step_mounts = super::mounts::prepare(env, &op.mounts, &step.state.workdir)?;
    let network = match op
        .network
        .as_deref()
        .or(env.options.network.as_deref())
        .unwrap_or("default")
    {
        "none" => Network::None,
        _ => Network::Host,
    };
    let mut process = process_env(env, step, &user);
    for var in &step_mounts.env {
        let (key, value) = var.split_once('=').unwrap_or((var, ""));
        add_env(&mut process, key, value);
    }
    if let Some(sock) = &step_mounts.ssh_auth_sock {
        if !process.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
            add_env(&mut process, "SSH_AUTH_SOCK", sock);
        }
    }
    let spec = SandboxSpec {
        rootfs: root.clone(),
        argv: op.argv.clone(),
        env: process,
        cwd: step.state.workdir.clone(),
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids.clone(),
        hostname: HOSTNAME.to_owned(),
        network,
        mounts: step_mounts.mounts.clone(),
        hosts: format!(
            "127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        ),
        resolv_conf: resolv_conf(network),
        timeout: None,
        limits: env.options.limits.clone(),
        cgroup: env.cgroups.place_for(&env.options.limits, env.reporter)?,
    };
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut partial: Vec<u8> = Vec::new();
    let status = env
        .executor
        .run(&spec, &mut |bytes: &[u8]| {
            partial.extend_from_slice(bytes);
            while let Some(pos) = partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = partial.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                env.reporter.event(BuildEvent::StepLog {
                    id: id.clone(),
                    line: line.clone(),
                });
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        })
        .map_err(|e| match e {
            super::sandbox::Error::Cancelled => ExecError::Interrupted,
            e => ExecError::Sandbox(e),
        })?;
    if !partial.is_empty() {
        let line = String::from_utf8_lossy(&partial).into_owned();
        env.reporter.event(BuildEvent::StepLog {
            id: id.clone(),
            line: line.clone(),
        });
        tail.push_back(line);
    }
    drop(step_mounts);
    step_root.unmount()?;
    let command = op.argv.join(" ");
    let tail: Vec<String> = tail.into();
    if let Some(e) = limit_failure(&status, &env.options.limits, &command, &tail) {
        return Err(e);
    }
    if !status.success() {
        return Err(ExecError::RunFailed {
            command,
            code: status.code,
            tail,
        });
    }
    step_root.commit(env, layers)
}

/// The environment of the process: the stage's ENV and the build args in scope (already
/// merged by the plan), proxy variables from the build args, then defaults.
fn process_env(env: &StageEnv<'_>, step: &Step, user: &super::users::User) -> Vec<String> {
    let mut vars = step.state.env.clone();
    if let Some(proxies) = proxy_env(&env.options.build_args) {
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

fn resolv_conf(network: Network) -> String {
    match network {
        Network::None => String::new(),
        Network::Host => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    }
}

fn read_etc(root: &Path, name: &str) -> String {
    copy::host_path(root, &format!("/etc/{name}"), true)
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}
