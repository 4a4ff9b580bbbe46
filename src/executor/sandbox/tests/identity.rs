//! Who and where the command runs: ids, groups, env, cwd, host name, network.

use super::*;

#[test]
fn user_group_and_supplementary_groups_are_exactly_the_spec() {
    if !prerequisites("ids") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let mut spec = rootfs.spec(&["id"]);
    (spec.uid, spec.gid, spec.additional_gids) = (1000, 1000, vec![1000, 2000]);
    let (result, out) = run(&spec);
    assert_eq!(result.unwrap().code, 0);
    assert_eq!(
        out,
        "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\n"
    );
    let mut spec = rootfs.spec(&["id"]);
    (spec.uid, spec.gid) = (1234, 4321);
    let (_, out) = run(&spec);
    assert_eq!(out, "uid=1234 gid=4321\n", "no supplementary groups at all");
}

#[test]
fn env_is_exactly_the_spec() {
    if !prerequisites("env") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let mut spec = rootfs.spec(&["/bin/env"]);
    spec.env = vec![
        "PATH=/bin".into(),
        "A=1".into(),
        "B=two words".into(),
        "EMPTY=".into(),
    ];
    let (result, out) = run(&spec);
    assert_eq!(result.unwrap().code, 0);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["PATH=/bin", "A=1", "B=two words", "EMPTY="]
    );
}

#[test]
fn cwd_is_created_if_missing_and_umask_is_022() {
    if !prerequisites("cwd") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let mut spec = rootfs.spec(&["/bin/sh", "-c", "pwd; umask; touch f; stat -c %a f"]);
    spec.cwd = "/work/dir".into();
    let (result, out) = run(&spec);
    assert_eq!(result.unwrap().code, 0);
    assert_eq!(out, "/work/dir\n0022\n644\n");
    assert!(
        rootfs.path().join("work/dir/f").is_file(),
        "the created cwd stays in the layer"
    );
}

#[test]
fn hostname_is_set_in_the_uts_namespace_and_in_etc() {
    if !prerequisites("hostname") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let (code, out) = sh(&rootfs, "hostname; cat /etc/hostname");
    assert_eq!((code, out.as_str()), (0, "host\nhost\n"));
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    assert_ne!(host, "host", "the host's name is untouched");
}

/// Interface names in a `/proc/net/dev` listing.
fn interfaces(dev: &str) -> Vec<String> {
    let mut names: Vec<String> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn network_none_has_only_loopback_and_it_is_up() {
    if !prerequisites("network none") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let (code, out) = sh(&rootfs, "cat /proc/net/dev");
    assert_eq!((code, interfaces(&out)), (0, vec!["lo".to_owned()]));
    let (code, out) = sh(
        &rootfs,
        "ip link show lo; ping -c1 -W1 127.0.0.1 >/dev/null && echo pong",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("LOOPBACK,UP"), "{out}");
    assert!(out.ends_with("pong\n"), "{out}");
}

#[test]
fn network_host_shares_the_hosts_interfaces() {
    if !prerequisites("network host") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let mut spec = rootfs.spec(&["cat", "/proc/net/dev"]);
    spec.network = Network::Host;
    let (result, out) = run(&spec);
    assert_eq!(result.unwrap().code, 0);
    let host = fs::read_to_string("/proc/net/dev").unwrap();
    assert_eq!(interfaces(&out), interfaces(&host));
}
