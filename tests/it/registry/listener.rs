//! A TCP server on `127.0.0.1:<ephemeral>` for the in-process test servers: an accept
//! loop on its own thread, one thread per connection, stopped when dropped.
//!
//! Stopping ends the accept loop (woken by a connection to itself); connections being
//! served finish on their own, since each handler serves one request and closes.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running accept loop; dropping it stops accepting.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on an ephemeral loopback port and calls `handle` on a new thread for each
    /// connection. `name` names the threads (seen in panics).
    pub fn start<F>(name: &str, handle: F) -> Server
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen on 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("local address of a bound listener");
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::new(handle);
        let stopping = Arc::clone(&stop);
        let thread_name = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("{name} accept"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let handle = Arc::clone(&handle);
                    let spawned = std::thread::Builder::new()
                        .name(format!("{thread_name} conn"))
                        .spawn(move || handle(conn));
                    if let Err(e) = spawned {
                        eprintln!("{thread_name}: cannot spawn a connection thread: {e}");
                    }
                }
            })
            .expect("spawn the accept thread");
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; if the connect fails the loop is already gone.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
