//! The local channel: while `coffer serve` holds an embedded data directory, the operator
//! commands other processes run on that directory (`task.rs`) are sent to it through a Unix
//! socket in the directory, `coffer.sock`. Only the directory's owner can use it: the socket is
//! mode 0600, and the server also refuses a peer whose user id is not the socket's owner.
//! The server runs the command exactly as the process would have on a store of its own and
//! sends back what to print, so the output and exit code are the same.
//!
//! One JSON line each way: `{"args": [argv without the program], "cwd": "<the caller's>"}`,
//! then `{"done": {"json": ...}}`, `{"done": {"text": "..."}}` or `{"error": "<reason>"}`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::{CommandFactory, FromArgMatches};
use coffer_app::Directory;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::task::Printed;

/// The socket's name in the data directory.
pub const SOCKET: &str = "coffer.sock";
/// The longest request (arguments and a directory name).
const MAX_REQUEST: u64 = 64 * 1024;
/// To send a request once connected.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Commands run at once; more connections wait their turn.
const AT_ONCE: usize = 8;

#[derive(Serialize, Deserialize)]
struct Request {
    args: Vec<String>,
    cwd: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Done(Printed),
    Error(String),
}

/// The socket a server listens on, until `stop` turns true.
pub struct Listening {
    path: PathBuf,
    accepting: tokio::task::JoinHandle<()>,
}

impl Listening {
    /// Wait for the commands under way to finish (the store is still open), then remove the socket.
    pub async fn close(self) {
        let _ = self.accepting.await;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listen on `data/coffer.sock` (the caller holds the directory's lock, so a socket left there
/// by a server that died is replaced). Bound under a temporary name and renamed once 0600.
pub fn listen(data: &Path, dir: Arc<Directory>, stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<Listening> {
    let path = data.join(SOCKET);
    let tmp = data.join(format!("{SOCKET}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).with_context(|| format!("cannot listen on {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    let owner = std::fs::metadata(&tmp)?.uid();
    std::fs::rename(&tmp, &path)?;
    let accepting = tokio::spawn(accept(listener, dir, owner, stop));
    Ok(Listening { path, accepting })
}

async fn accept(listener: UnixListener, dir: Arc<Directory>, owner: u32, stop: tokio::sync::watch::Receiver<bool>) {
    let mut running = tokio::task::JoinSet::new();
    let turns = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
    let mut stop = std::pin::pin!(crate::stopped(stop));
    loop {
        let stream = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    coffer_store::logs::error("local socket: accept failed", &e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (dir, turns) = (dir.clone(), turns.clone());
        running.spawn(async move {
            let Ok(_turn) = turns.acquire_owned().await else { return };
            serve_one(stream, &dir, owner).await;
        });
        while running.try_join_next().is_some() {}
    }
    drop(listener);
    while running.join_next().await.is_some() {}
}

async fn serve_one(stream: UnixStream, dir: &Directory, owner: u32) {
    match stream.peer_cred() {
        Ok(peer) if peer.uid() == owner => {}
        Ok(peer) => {
            tracing::warn!(uid = peer.uid(), "local socket: refused a process of another user");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "local socket: cannot tell who connected; refused");
            return;
        }
    }
    let (read, mut write) = stream.into_split();
    let reply = match tokio::time::timeout(READ_TIMEOUT, read_request(read)).await {
        Ok(Ok(req)) => answer(req, dir).await,
        Ok(Err(e)) => Reply::Error(format!("bad request on the local socket: {e}")),
        Err(_) => Reply::Error("no request within 10 s".into()),
    };
    let mut line = serde_json::to_vec(&reply).expect("replies serialize");
    line.push(b'\n');
    if let Err(e) = write.write_all(&line).await {
        tracing::debug!(error = %e, "local socket: the caller left before the reply");
    }
}

async fn read_request(read: tokio::net::unix::OwnedReadHalf) -> anyhow::Result<Request> {
    let mut line = Vec::new();
    BufReader::new(read.take(MAX_REQUEST)).read_until(b'\n', &mut line).await?;
    if line.last() != Some(&b'\n') {
        anyhow::bail!("a request is one line of at most {MAX_REQUEST} bytes");
    }
    Ok(serde_json::from_slice(&line)?)
}

/// Parse the caller's arguments as `coffer` would, and run the command if it is one the
/// server runs for others.
async fn answer(req: Request, dir: &Directory) -> Reply {
    let argv = std::iter::once("coffer".to_string()).chain(req.args);
    let parsed =
        crate::Cli::command().try_get_matches_from(argv).and_then(|m| Ok((crate::Cli::from_arg_matches(&m)?, m)));
    let (cli, matches) = match parsed {
        Ok(p) => p,
        Err(e) => return Reply::Error(e.to_string()),
    };
    let name = command_name(&matches);
    let Some(mut task) = crate::task_of(cli.command) else {
        return Reply::Error(format!("`coffer {name}` is not sent to the server: run it on its own"));
    };
    task.anchor(&req.cwd);
    let started = std::time::Instant::now();
    let done = task.run(dir).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(command = %name, ok = done.is_ok(), latency_ms, "operator command over the local socket");
    match done {
        Ok(p) => Reply::Done(p),
        Err(e) => Reply::Error(crate::one_line(&e)),
    }
}

/// `wallet open`, `demo`: the subcommand names, without their arguments.
fn command_name(m: &clap::ArgMatches) -> String {
    let mut names = Vec::new();
    let mut at = m;
    while let Some((name, sub)) = at.subcommand() {
        names.push(name);
        at = sub;
    }
    names.join(" ")
}

/// Run this process's command in the server holding `data`: `None` when no server listens
/// there (no socket, or one a stopped server left), else what to print or the refusal.
pub async fn send(data: &Path) -> anyhow::Result<Option<Result<Printed, String>>> {
    let path = data.join(SOCKET);
    let mut stream = match UnixStream::connect(&path).await {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
            return Ok(None)
        }
        Err(e) => return Err(e).with_context(|| format!("cannot reach the server holding {}", data.display())),
    };
    let args = std::env::args_os().skip(1).map(|a| a.into_string()).collect::<Result<Vec<_>, _>>();
    let args =
        args.map_err(|_| anyhow!("an argument is not UTF-8: it cannot be sent to the server holding the directory"))?;
    let mut line = serde_json::to_vec(&Request { args, cwd: std::env::current_dir()? })?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await?;
    let reply: Reply = serde_json::from_slice(&reply)
        .with_context(|| format!("the server holding {} sent no reply (did it stop?)", data.display()))?;
    Ok(Some(match reply {
        Reply::Done(p) => Ok(p),
        Reply::Error(e) => Err(e),
    }))
}
