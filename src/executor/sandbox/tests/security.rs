//! Privileges: capability sets, `no_new_privs`, seccomp, masked and read-only paths.

use super::*;

/// `Name:\tvalue` lines of `/proc/self/status` of the command itself (grep is exec'd
/// directly, no shell in between).
fn status_of(spec: &SandboxSpec) -> Vec<(String, String)> {
    let mut spec = spec.clone();
    spec.argv = [
        "grep",
        "-E",
        "^(Cap|NoNewPrivs|Seccomp:)",
        "/proc/self/status",
    ]
    .map(String::from)
    .to_vec();
    let (result, out) = run(&spec);
    assert_eq!(result.unwrap().code, 0, "{out}");
    out.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

fn field<'a>(status: &'a [(String, String)], name: &str) -> &'a str {
    status
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("missing")
}

#[test]
fn root_gets_dockers_default_capabilities_and_no_more() {
    if !prerequisites("capabilities") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let st = status_of(&rootfs.spec(&[]));
    assert_eq!(field(&st, "CapBnd"), "00000000a80425fb");
    assert_eq!(field(&st, "CapEff"), "00000000a80425fb");
    assert_eq!(field(&st, "CapPrm"), "00000000a80425fb");
    assert_eq!(field(&st, "CapInh"), "0000000000000000");
    assert_eq!(field(&st, "CapAmb"), "0000000000000000");
    assert_eq!(field(&st, "NoNewPrivs"), "1");
    assert_eq!(field(&st, "Seccomp"), "2", "filter mode");
}

#[test]
fn a_non_root_user_keeps_only_the_bounding_set() {
    if !prerequisites("non-root capabilities") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let mut spec = rootfs.spec(&[]);
    (spec.uid, spec.gid) = (1000, 1000);
    let st = status_of(&spec);
    assert_eq!(field(&st, "CapBnd"), "00000000a80425fb");
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(field(&st, set), "0000000000000000", "{set}");
    }
    assert_eq!(field(&st, "NoNewPrivs"), "1");
}

#[test]
fn mounting_and_new_namespaces_are_refused() {
    if !prerequisites("mount refusal") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let (code, out) = sh(&rootfs, "mkdir -p /mnt && mount -t tmpfs x /mnt");
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("ermission denied") || out.contains("not permitted"),
        "{out}"
    );
    let (code, out) = sh(&rootfs, "unshare -U true");
    assert_ne!(code, 0, "seccomp refuses unshare: {out}");
}

#[test]
fn proc_is_masked_and_partly_read_only() {
    if !prerequisites("masked paths") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let (code, out) = sh(&rootfs, "echo evil > /proc/sys/kernel/hostname");
    assert_ne!(code, 0);
    assert!(out.contains("Read-only file system"), "{out}");
    let (code, out) = sh(&rootfs, "echo 1 > /proc/sysrq-trigger");
    assert_ne!(code, 0, "{out}");
    // Masked files read as /dev/null, masked directories are empty (the paths this
    // kernel has; `/proc/kcore` may not exist at all).
    let script = "wc -c < /proc/keys; wc -c < /proc/timer_list; wc -c < /proc/interrupts; \
                  ls -A /sys/firmware | wc -l; ls -A /proc/acpi | wc -l; [ -e /proc/kcore ] && wc -c < /proc/kcore";
    let (_, out) = sh(&rootfs, script);
    let counts: Vec<_> = out.split_whitespace().collect();
    assert!(
        counts.len() >= 5 && counts.iter().all(|c| *c == "0"),
        "{out}"
    );
    let (code, out) = sh(
        &rootfs,
        "cat /proc/uptime > /dev/null && wc -c < /proc/version",
    );
    assert!(
        code == 0 && out.trim() != "0",
        "unmasked /proc works: {out}"
    );
    let (code, out) = sh(&rootfs, "touch /sys/x");
    assert_ne!(code, 0, "sysfs is read-only: {out}");
    // Readable, as in Docker.
    let (code, out) = sh(&rootfs, "cat /proc/sys/kernel/hostname");
    assert_eq!((code, out.as_str()), (0, "host\n"));
}
