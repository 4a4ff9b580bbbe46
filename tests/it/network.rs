//! RUN networking: entitlements (`--allow`) and the isolated default network.

use crate::support::*;

#[test]
fn run_network_host_and_security_insecure_need_their_allow() {
    for (line, flag) in [
        ("RUN --network=host true", "--allow network.host"),
        ("RUN --security=insecure true", "--allow security.insecure"),
    ] {
        let t = TestContext::new(&format!("FROM scratch\n{line}\n"), &[]);
        let err = t.build_fails(&[]);
        let option = line.split(' ').nth(1).unwrap_or_default();
        assert!(
            err.contains(&format!("RUN {option} needs {flag}")),
            "names the flag: {err}"
        );
        assert!(err.contains("Dockerfile:2"), "names the line: {err}");
        // The other entitlement does not grant this one.
        let other = if flag.contains("network") {
            "security.insecure"
        } else {
            "network.host"
        };
        let err = t.build_fails(&["--allow", other]);
        assert!(err.contains(&format!("needs {flag}")), "{err}");
    }
}

#[test]
fn allow_refuses_what_rbuild_cannot_grant_by_name() {
    let t = TestContext::new("FROM scratch\n", &[]);
    for (value, says) in [
        ("device", "no CDI device injection"),
        ("buildx.local.delete", "rbuild prune"),
        ("network.hots", "unknown entitlement"),
    ] {
        let err = t.build_fails(&["--allow", value]);
        assert!(err.contains(&format!("--allow {value}: ")), "{err}");
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn granted_entitlements_let_the_steps_run() {
    let Some(t) = busybox(
        "RUN --network=host echo host > /host\nRUN --security=insecure echo insecure > /insecure\n",
        &[],
    ) else {
        return;
    };
    let out = t.path("out");
    let dest = format!("type=local,dest={}", out.display());
    let args = [
        "build",
        "--progress=plain",
        "--allow",
        "network.host",
        "--allow=security.insecure",
        "-o",
        &dest,
    ];
    let ctx = t.context().to_string_lossy().into_owned();
    let (_, stderr) = run_ok(&t.root(), &[&args[..], &[ctx.as_str()]].concat(), &[]);
    assert!(
        stderr.contains("RUN --security=insecure runs in the default sandbox"),
        "says it is not privileged: {stderr}"
    );
    assert_eq!(read(&out, "host"), "host\n");
    assert_eq!(read(&out, "insecure"), "insecure\n");
}
