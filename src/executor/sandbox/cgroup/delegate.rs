//! Making a discovered [`Place`] usable: on cgroup v2 the controllers are handed down
//! (`cgroup.subtree_control`), or the step cgroups go beside the own cgroup when it
//! holds processes; then a probe directory is created and removed in each hierarchy,
//! and a hierarchy where that fails (no permission, read-only cgroupfs) is dropped
//! with the reason. On v2 the device program is attached to the probe directory:
//! where that fails (no `CAP_BPF`, eBPF disabled) the steps get no device program,
//! and the reason is listed.

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::discover::{read_in, v2_controllers};
use super::{devices_bpf, stale, Controller, Hierarchy, Place, Version};

/// Delegates (v2) and probes every hierarchy of `place`; what fails moves to
/// `place.missing`. On v2 the probe also attaches the device program: when that
/// works the hierarchy gets [`Controller::Devices`] (even without any controller
/// handed down: a program needs none).
pub(super) fn prepare(place: &mut Place) {
    let v2 = place.version == Version::V2;
    if v2 {
        delegate(place);
    }
    let name = stale::probe_name();
    let hierarchies = std::mem::take(&mut place.hierarchies);
    place.hierarchies = hierarchies
        .into_iter()
        .filter_map(|h| probed(h, &name, v2, &mut place.missing))
        .collect();
}

/// Hands the controllers of the v2 hierarchy down; when that fails they move to
/// `place.missing` (the hierarchy stays, for the probe).
fn delegate(place: &mut Place) {
    let Some(h) = place.hierarchies.first_mut() else {
        return;
    };
    match delegate_v2(&h.dir, &h.controllers) {
        Ok((dir, controllers)) => {
            h.dir = dir;
            h.controllers = controllers;
        }
        Err(why) => h.controllers.retain(|c| {
            place.missing.push((*c, why.clone()));
            false
        }),
    }
}

/// `h` once a probe directory was made in it (with the device program attached when
/// `devices`), if it still has a controller; what cannot be used goes to `missing`.
fn probed(
    mut h: Hierarchy,
    name: &str,
    devices: bool,
    missing: &mut Vec<(Controller, String)>,
) -> Option<Hierarchy> {
    let mut guarded = None;
    let made = probe(&h.dir, name, |path| {
        if devices {
            guarded = Some(attach_devices(path));
        }
    });
    if let Err(why) = made {
        let lost = h.controllers.iter().copied();
        let lost = lost.chain(devices.then_some(Controller::Devices));
        missing.extend(lost.map(|c| (c, why.clone())));
        return None;
    }
    match guarded {
        Some(Ok(())) => h.controllers.push(Controller::Devices),
        Some(Err(why)) => missing.push((Controller::Devices, why)),
        None => {}
    }
    (!h.controllers.is_empty()).then_some(h)
}

/// Creates `dir/name`, runs `during` on it and removes it.
fn probe(dir: &Path, name: &str, during: impl FnOnce(&Path)) -> Result<(), String> {
    let path = dir.join(name);
    std::fs::create_dir(&path)
        .map_err(|e| format!("cannot create a cgroup in {}: {e}", dir.display()))?;
    during(&path);
    std::fs::remove_dir(&path)
        .map_err(|e| format!("cannot remove the cgroup {}: {e}", path.display()))
}

/// Attaches the device program to the cgroup v2 directory `path`.
fn attach_devices(path: &Path) -> Result<(), String> {
    let dir =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    devices_bpf::attach(dir.as_fd()).map_err(|e| format!("{e} (on {})", path.display()))
}

/// The directory (and its controllers) where v2 step cgroups get `wanted`: the own
/// cgroup `own` once they are enabled in its `cgroup.subtree_control`, or, when
/// that is refused because `own` holds processes (`EBUSY`), its parent, which hands
/// them down already (that is how `own` has them).
pub(super) fn delegate_v2(
    own: &Path,
    wanted: &[Controller],
) -> Result<(PathBuf, Vec<Controller>), String> {
    if wanted.is_empty() {
        return Ok((own.to_path_buf(), Vec::new()));
    }
    let enabled = v2_controllers(&read_in(own, "cgroup.subtree_control")?);
    let absent: Vec<Controller> = wanted
        .iter()
        .copied()
        .filter(|c| !enabled.contains(c))
        .collect();
    if absent.is_empty() {
        return Ok((own.to_path_buf(), wanted.to_vec()));
    }
    let line: Vec<String> = absent.iter().map(|c| format!("+{c}")).collect();
    let path = own.join("cgroup.subtree_control");
    match write_file(&path, &line.join(" ")) {
        Ok(()) => Ok((own.to_path_buf(), wanted.to_vec())),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => beside(own, wanted),
        Err(e) => Err(format!(
            "cannot enable {} in {}: {e}",
            line.join(" "),
            path.display()
        )),
    }
}

/// The parent of `own`, when it hands `wanted` down.
fn beside(own: &Path, wanted: &[Controller]) -> Result<(PathBuf, Vec<Controller>), String> {
    let busy = || {
        format!(
            "{} holds processes, so it cannot hand controllers down (cgroup v2's \
             no-internal-process rule), and its parent does not hand them down either",
            own.display()
        )
    };
    let parent = own.parent().ok_or_else(busy)?;
    let enabled = v2_controllers(&read_in(parent, "cgroup.subtree_control").map_err(|_| busy())?);
    let usable: Vec<Controller> = wanted
        .iter()
        .copied()
        .filter(|c| enabled.contains(c))
        .collect();
    if usable.is_empty() {
        return Err(busy());
    }
    Ok((parent.to_path_buf(), usable))
}

/// Writes `value` to the cgroup file `path` in one `write`.
fn write_file(path: &Path, value: &str) -> io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    file.write_all(value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::sandbox::cgroup::discover::v2_place;

    fn fake_v2(subtree: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let own = root.path().join("user.slice/session.scope");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(
            root.path().join("user.slice/cgroup.subtree_control"),
            "cpu memory pids\n",
        )
        .unwrap();
        std::fs::write(own.join("cgroup.subtree_control"), subtree).unwrap();
        root
    }

    #[test]
    fn v2_controllers_are_handed_down_by_the_own_cgroup() {
        let root = fake_v2("\n");
        let own = root.path().join("user.slice/session.scope");
        let wanted = [Controller::Memory, Controller::Pids, Controller::Cpu];
        let (dir, got) = delegate_v2(&own, &wanted).unwrap();
        assert_eq!(
            (dir.as_path(), got.as_slice()),
            (own.as_path(), &wanted[..])
        );
        assert_eq!(
            std::fs::read_to_string(own.join("cgroup.subtree_control")).unwrap(),
            "+memory +pids +cpu"
        );
        let root = fake_v2("memory pids cpu\n");
        let own = root.path().join("user.slice/session.scope");
        assert_eq!(delegate_v2(&own, &wanted).unwrap().0, own);
    }

    #[test]
    fn a_v2_probe_failure_moves_every_controller_to_missing() {
        let mut place = v2_place("/nonexistent/cgroup".into(), vec![Controller::Pids]);
        prepare(&mut place);
        assert!(place.is_empty());
        assert!(
            place.why_not(Controller::Pids).contains("cannot"),
            "{place:?}"
        );
        assert!(place.why_not(Controller::Devices).contains("cannot create"));
    }

    #[test]
    fn probing_creates_and_removes_a_directory() {
        let root = fake_v2("memory pids\n");
        let own = root.path().join("user.slice/session.scope");
        let mut place = v2_place(own.clone(), vec![Controller::Memory, Controller::Pids]);
        prepare(&mut place);
        assert_eq!(place.hierarchies.len(), 1, "{place:?}");
        // No cgroupfs: the device program cannot be attached, and says so.
        assert!(!place.has(Controller::Devices));
        assert!(
            place
                .why_not(Controller::Devices)
                .contains("device eBPF program"),
            "{place:?}"
        );
        let left: Vec<_> = std::fs::read_dir(&own)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_busy_own_cgroup_puts_the_steps_beside_it() {
        let root = fake_v2("\n");
        let parent = root.path().join("user.slice");
        let wanted = [Controller::Memory, Controller::Cpuset];
        let (dir, got) = beside(&parent.join("session.scope"), &wanted).unwrap();
        assert_eq!((dir, got), (parent.clone(), vec![Controller::Memory]));
        let err = beside(&parent.join("session.scope"), &[Controller::Cpuset]).unwrap_err();
        assert!(err.contains("no-internal-process"), "{err}");
    }
}
