//! Finding the process's own cgroup in each hierarchy: `/proc/self/cgroup` (which
//! cgroup, per hierarchy) mapped onto the cgroupfs mounts of `/proc/self/mountinfo`
//! (where that hierarchy is mounted, and which part of it: a container may see only
//! a subtree).

use std::path::{Path, PathBuf};

use super::{Controller, Hierarchy, Place, Version};

/// One line of `/proc/self/cgroup`: `ID:CONTROLLERS:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Membership {
    /// The hierarchy's controllers (`cpu,cpuacct`; `name=systemd`); empty for v2.
    pub controllers: Vec<String>,
    /// The cgroup, from the hierarchy's root.
    pub path: String,
}

/// A cgroupfs mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CgroupMount {
    /// The part of the hierarchy mounted (`/` unless a subtree was bind-mounted).
    pub root: String,
    /// Where.
    pub mount_point: PathBuf,
    /// `cgroup2` rather than `cgroup`.
    pub v2: bool,
    /// The super options (v1: the controllers, `rw`/`ro`).
    pub options: Vec<String>,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Parses `/proc/self/cgroup`.
pub(super) fn parse_memberships(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(Membership {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// The cgroupfs mounts of a mountinfo table.
pub(super) fn parse_mounts(text: &str) -> Vec<CgroupMount> {
    text.lines().filter_map(parse_mount).collect()
}

/// `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER`.
fn parse_mount(line: &str) -> Option<CgroupMount> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let fstype = right.next()?;
    let _source = right.next()?;
    let options: Vec<String> = right.next()?.split(',').map(str::to_owned).collect();
    let v2 = match fstype {
        "cgroup" => false,
        "cgroup2" => true,
        _ => return None,
    };
    let mount_options = left.get(5)?;
    let read_only =
        mount_options.split(',').any(|o| o == "ro") || options.iter().any(|o| o == "ro");
    Some(CgroupMount {
        root: unescape(left.get(3)?),
        mount_point: PathBuf::from(unescape(left.get(4)?)),
        v2,
        options,
        read_only,
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The directory of cgroup `path` under `mount`, if the mount shows it.
fn dir_in(mount: &CgroupMount, path: &str) -> Option<PathBuf> {
    let rel = if mount.root == "/" {
        path.trim_start_matches('/')
    } else {
        let rest = path.strip_prefix(mount.root.as_str())?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest.trim_start_matches('/')
    };
    Some(if rel.is_empty() {
        mount.mount_point.clone()
    } else {
        mount.mount_point.join(rel)
    })
}

/// The v1 hierarchies of our controllers, or `None` when none of them is on v1.
pub(super) fn v1_place(memberships: &[Membership], mounts: &[CgroupMount]) -> Option<Place> {
    let mut place = Place {
        version: Version::V1,
        hierarchies: Vec::new(),
        missing: Vec::new(),
    };
    let mut any = false;
    for controller in Controller::ALL {
        let name = controller.name();
        let mount = mounts
            .iter()
            .find(|m| !m.v2 && m.options.iter().any(|o| o == name));
        let member = memberships
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == name));
        let dir = match (mount, member) {
            (Some(mount), Some(member)) => {
                any = true;
                match dir_in(mount, &member.path) {
                    Some(_) if mount.read_only => Err(format!(
                        "the {name} cgroup hierarchy at {} is mounted read-only",
                        mount.mount_point.display()
                    )),
                    Some(dir) => Ok(dir),
                    None => Err(format!(
                        "our {name} cgroup {} is not below the mount at {}",
                        member.path,
                        mount.mount_point.display()
                    )),
                }
            }
            _ => Err(format!("no {name} cgroup hierarchy is mounted")),
        };
        match dir {
            Ok(dir) => add(&mut place.hierarchies, dir, controller),
            Err(why) => place.missing.push((controller, why)),
        }
    }
    any.then_some(place)
}

fn add(hierarchies: &mut Vec<Hierarchy>, dir: PathBuf, controller: Controller) {
    match hierarchies.iter_mut().find(|h| h.dir == dir) {
        Some(h) => h.controllers.push(controller),
        None => hierarchies.push(Hierarchy {
            dir,
            controllers: vec![controller],
        }),
    }
}

/// The own cgroup on the unified hierarchy: its directory and the mount's.
pub(super) fn v2_dir(
    memberships: &[Membership],
    mounts: &[CgroupMount],
) -> Result<(PathBuf, PathBuf), String> {
    let member = memberships
        .iter()
        .find(|m| m.controllers.is_empty())
        .ok_or("no cgroup is mounted (neither v1 controllers nor cgroup2)")?;
    let mount = mounts
        .iter()
        .find(|m| m.v2 && dir_in(m, &member.path).is_some())
        .ok_or("no cgroup2 filesystem is mounted")?;
    if mount.read_only {
        return Err(format!(
            "the cgroup2 filesystem at {} is mounted read-only",
            mount.mount_point.display()
        ));
    }
    let dir = dir_in(mount, &member.path).ok_or("our cgroup is not below the cgroup2 mount")?;
    Ok((dir, mount.mount_point.clone()))
}

/// The controllers of [`Controller::ALL`] listed in a `cgroup.controllers` file.
pub(super) fn v2_controllers(text: &str) -> Vec<Controller> {
    let listed: Vec<&str> = text.split_whitespace().collect();
    Controller::ALL
        .into_iter()
        .filter(|c| *c != Controller::Devices && listed.contains(&c.name()))
        .collect()
}

/// This process's [`Place`] before delegation and probing: v1 when any of our
/// controllers is on a v1 hierarchy, else the unified hierarchy.
pub(super) fn current() -> Result<Place, String> {
    let read =
        |path: &str| std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"));
    let memberships = parse_memberships(&read("/proc/self/cgroup")?);
    let mounts = parse_mounts(&read("/proc/self/mountinfo")?);
    if let Some(place) = v1_place(&memberships, &mounts) {
        return Ok(place);
    }
    let (dir, _mount) = v2_dir(&memberships, &mounts)?;
    let controllers = v2_controllers(&read_in(&dir, "cgroup.controllers")?);
    Ok(v2_place(dir, controllers))
}

/// A v2 [`Place`] at `dir` with `controllers`; the others listed as missing.
pub(super) fn v2_place(dir: PathBuf, controllers: Vec<Controller>) -> Place {
    let missing = Controller::ALL
        .into_iter()
        .filter(|c| *c != Controller::Devices && !controllers.contains(c))
        .map(|c| {
            (
                c,
                format!("the {c} controller is not available in {}", dir.display()),
            )
        })
        .collect();
    Place {
        version: Version::V2,
        hierarchies: vec![Hierarchy { dir, controllers }],
        missing,
    }
}

/// Reads `dir/name`.
pub(super) fn read_in(dir: &Path, name: &str) -> Result<String, String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's layout: v1 controllers, a `unified` cgroup2 mount without any,
    /// the memory cgroup nested.
    const HYBRID_CGROUP: &str = "9:name=systemd:/\n8:pids:/\n6:freezer:/\n5:devices:/\n\
        4:memory:/process_api/ca3d\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";
    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_hosts_use_the_v1_hierarchies() {
        let m = parse_memberships(HYBRID_CGROUP);
        let place = v1_place(&m, &parse_mounts(HYBRID_MOUNTS)).unwrap();
        assert_eq!(place.version, Version::V1);
        let dirs: Vec<(String, Vec<Controller>)> = place
            .hierarchies
            .iter()
            .map(|h| (h.dir.display().to_string(), h.controllers.clone()))
            .collect();
        assert_eq!(
            dirs,
            [
                (
                    "/sys/fs/cgroup/memory/process_api/ca3d".into(),
                    vec![Controller::Memory]
                ),
                ("/sys/fs/cgroup/pids".into(), vec![Controller::Pids]),
                ("/sys/fs/cgroup/cpu".into(), vec![Controller::Cpu]),
                ("/sys/fs/cgroup/cpuset".into(), vec![Controller::Cpuset]),
                ("/sys/fs/cgroup/devices".into(), vec![Controller::Devices]),
            ]
        );
        assert!(place.missing.is_empty());
    }

    #[test]
    fn co_mounted_read_only_and_subtree_mounts() {
        let cgroup = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n2:pids:/x\n0::/\n";
        let mounts = "\
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
36 31 0:33 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct
37 31 0:34 /other /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
        let place = v1_place(&parse_memberships(cgroup), &parse_mounts(mounts)).unwrap();
        assert_eq!(place.hierarchies.len(), 1);
        assert_eq!(place.hierarchies[0].dir, Path::new("/sys/fs/cgroup/memory"));
        assert!(place.why_not(Controller::Cpu).contains("read-only"));
        assert!(place.why_not(Controller::Pids).contains("not below"));
        assert!(place.why_not(Controller::Devices).contains("no devices"));
    }

    #[test]
    fn unified_hosts_use_the_cgroup2_mount() {
        let m = parse_memberships("0::/user.slice/user-0.slice/session-3.scope\n");
        let mounts =
            parse_mounts("30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
        assert!(v1_place(&m, &mounts).is_none());
        let (dir, mount) = v2_dir(&m, &mounts).unwrap();
        assert_eq!(
            dir,
            Path::new("/sys/fs/cgroup/user.slice/user-0.slice/session-3.scope")
        );
        assert_eq!(mount, Path::new("/sys/fs/cgroup"));
        let ro = parse_mounts("30 23 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n");
        assert!(v2_dir(&m, &ro).unwrap_err().contains("read-only"));
        assert!(v2_dir(&m, &[]).is_err());
    }

    #[test]
    fn controllers_files_and_escapes() {
        assert_eq!(
            v2_controllers("cpuset cpu io memory hugetlb pids rdma misc\n"),
            [
                Controller::Memory,
                Controller::Pids,
                Controller::Cpu,
                Controller::Cpuset
            ]
        );
        assert!(v2_controllers("hugetlb\n").is_empty());
        assert_eq!(unescape("/a\\040b\\\\"), "/a b\\\\");
        let place = v2_place("/cg".into(), vec![Controller::Pids]);
        assert!(place.why_not(Controller::Memory).contains("not available"));
        assert!(place.why_not(Controller::Devices).is_empty());
    }
}
