//! The default network's backend ([`Backend`]): the knob `RBUILD_NETWORK_BACKEND`
//! (`auto`, the default: the kernel path, [`veth`], where [`veth::check`] allows it,
//! else `pasta`; `pasta`; `veth`: refused, saying why, where it is not usable), and
//! the `resolv.conf` a step on it gets.

use super::error::ExecError;
use super::sandbox::netpool::Backend;
use super::sandbox::{network, veth};

/// The environment variable that chooses the backend.
pub const KNOB: &str = "RBUILD_NETWORK_BACKEND";

/// The backend the default network uses now, from [`KNOB`] and the host.
pub fn backend() -> Result<Backend, ExecError> {
    let knob = std::env::var(KNOB).unwrap_or_default();
    match knob.as_str() {
        "" | "auto" => veth::check().map(Backend::Veth).or_else(|_| pasta()),
        "pasta" => pasta(),
        "veth" => veth::check().map(Backend::Veth).map_err(|why| {
            ExecError::NetworkBackend(format!(
                "{KNOB}=veth, and the veth network backend is not usable: {why}; \
                 set {KNOB}=pasta (or auto) to use pasta"
            ))
        }),
        other => Err(ExecError::NetworkBackend(format!(
            "{KNOB}={other} is not a network backend: use auto, pasta or veth"
        ))),
    }
}

/// `pasta`, if it can run here.
fn pasta() -> Result<Backend, ExecError> {
    pasta_path().map(Backend::Pasta)
}

/// The `pasta` to run, if it can run here (also what an emulated step uses: it needs a
/// network namespace of its own, in its own user namespace, so it cannot join the pool).
pub fn pasta_path() -> Result<std::path::PathBuf, ExecError> {
    if !network::tun_usable() {
        return Err(ExecError::TunDenied);
    }
    if !network::has_default_route() {
        return Err(ExecError::NoRoute);
    }
    network::find_pasta()
        .map(ToOwned::to_owned)
        .ok_or(ExecError::NoPasta)
}

/// The `resolv.conf` of a step on `backend`, from the host's (`host`): through
/// `pasta`'s forwarder, or the host's as it is on the veth path (whose resolvers
/// [`veth::check`] found reachable).
pub fn resolv_conf(backend: &Backend, host: &str) -> String {
    match backend {
        Backend::Pasta(_) => network::resolv_conf(host),
        Backend::Veth(_) => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_veth_path_keeps_the_hosts_resolvers() {
        let host = "nameserver 10.1.1.1\nsearch lan\n";
        let tools = veth::Tools {
            ip: "/sbin/ip".into(),
            nft: "/sbin/nft".into(),
        };
        assert_eq!(resolv_conf(&Backend::Veth(tools), host), host);
        let pasta = resolv_conf(&Backend::Pasta("/usr/bin/pasta".into()), host);
        assert!(pasta.contains(network::DNS_FORWARDER), "{pasta}");
    }
}
