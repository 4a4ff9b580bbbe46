//! rbuild's zstd layers as containerd reads them: containerd 1.6 (the engine of Docker
//! 23+ and of Kubernetes nodes) pulls an image rbuild pushed with `--compression zstd`,
//! unpacks it (checking every diff ID) and mounts its root filesystem. Docker 20.10
//! cannot pull zstd layers whoever wrote them (see the README); containerd is the
//! reader that stands for the daemons that can.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry::{available, Registry};
use crate::support::busybox;

/// A private containerd (its own root, state and socket; no CRI plugin), stopped on drop.
struct Containerd {
    child: Child,
    socket: PathBuf,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        let socket = dir.join("containerd.sock");
        let config = format!(
            "version = 2\nroot = {root:?}\nstate = {state:?}\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = {socket:?}\n[ttrpc]\n  address = \"{socket}.ttrpc\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
            root = dir.join("root").display().to_string(),
            state = dir.join("state").display().to_string(),
            socket = socket.display().to_string(),
        );
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("containerd");
        let containerd = Containerd { child, socket };
        // Up to 60 s: a loaded runner can be slow to start it.
        let deadline = Instant::now() + Duration::from_secs(60);
        while containerd.ctr(&["version"]).is_err() {
            assert!(Instant::now() < deadline, "containerd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        containerd
    }

    /// `ctr --address SOCKET ARGS`: stdout, or stderr as the error.
    fn ctr(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn containerd_pulls_unpacks_and_mounts_zstd_layers() {
    if !available(&["containerd", "ctr"]) {
        return;
    }
    let Some(t) = busybox("RUN echo zstd > /z.txt\n", &[]) else {
        return;
    };
    let reg = Registry::plain();
    let name = format!("{}/z/app:1", reg.host());
    t.build(&["--compression", "zstd", "-t", &name, "--push"]);
    let containerd = Containerd::start(&t.path("containerd"));
    let pulled = containerd.ctr(&["images", "pull", "--plain-http", &name]);
    let pulled = pulled.unwrap_or_else(|e| panic!("ctr pull: {e}"));
    assert!(pulled.contains("unpacking linux/amd64"), "{pulled}");
    let manifest = containerd.ctr(&["images", "ls", "-q"]).unwrap();
    assert!(manifest.contains(&name), "{manifest}");
    let mnt = t.path("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let target = mnt.to_str().unwrap();
    containerd
        .ctr(&["images", "mount", &name, target])
        .unwrap_or_else(|e| panic!("ctr mount: {e}"));
    let content = std::fs::read_to_string(mnt.join("z.txt"));
    let busybox_there = mnt.join("bin/busybox").is_file();
    let _ = containerd.ctr(&["images", "unmount", target]);
    assert_eq!(content.unwrap(), "zstd\n");
    assert!(busybox_there, "every layer is unpacked");
}
