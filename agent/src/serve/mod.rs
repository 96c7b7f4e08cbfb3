//! `lifeboat serve`: host-backup, host-restore, list and verify for clients that have no root
//! ssh to this host (`lifeboat ... host=H transport=tls`). TLS by rustls; a client proves
//! who it is with a certificate of `lifeboat ca` (mutual TLS: its OU is its role) or with a
//! token of `lifeboat token`. The command runs as a child `lifeboat` (the same program, with
//! the client's words and `--file-name=-`), its stdin, stdout and stderr carried in frames
//! ([`proto`]); its exit status is the client's. At most `max_concurrent` requests run at
//! once: one more is refused at once with [`crate::exit::BUSY`]. Every request is logged on
//! stderr (the journal) with the client's address, name, role and the outcome.

pub mod auth;
pub mod ca;
pub mod client;
pub mod proto;

use crate::cli::{Cli, Command, ServeArgs};
use anyhow::{bail, Context};
use auth::Identity;
use clap::Parser;
use proto::{read_frame, write_frame, Request, Status};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

/// The port of `lifeboat serve` when none is given.
pub const DEFAULT_PORT: u16 = 7443;
const DEFAULT_MAX: usize = 4;
/// A client gets this long for its TLS handshake and request.
const HANDSHAKE: Duration = Duration::from_secs(30);

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn load_certs(file: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let text = std::fs::read(file).with_context(|| format!("cannot read '{}'", file.display()))?;
    let certs = rustls_pemfile::certs(&mut text.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("'{}' is not a PEM certificate file", file.display()))?;
    if certs.is_empty() {
        bail!("'{}' holds no certificate (PEM)", file.display());
    }
    Ok(certs)
}

pub(crate) fn load_key(file: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let text = std::fs::read(file).with_context(|| format!("cannot read '{}'", file.display()))?;
    rustls_pemfile::private_key(&mut text.as_slice())
        .with_context(|| format!("'{}' is not a PEM key file", file.display()))?
        .with_context(|| format!("'{}' holds no private key", file.display()))
}

pub(crate) fn roots(file: &Path) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(file)? {
        roots
            .add(c)
            .with_context(|| format!("'{}' is not a usable CA certificate", file.display()))?;
    }
    Ok(roots)
}

struct Server {
    acceptor: tokio_rustls::TlsAcceptor,
    tokens: PathBuf,
    slots: Arc<Semaphore>,
    max: usize,
    program: PathBuf,
}

/// `lifeboat serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(c) = &args.config {
        // The children (the commands served) read the same configuration.
        std::env::set_var("LIFEBOAT_CONFIG", c);
    }
    let cfg = crate::config::load()?.serve.unwrap_or_default();
    let path = crate::config::config_path();
    let listen = args
        .listen
        .or(cfg.listen)
        .unwrap_or_else(|| format!("0.0.0.0:{DEFAULT_PORT}"));
    let listen: SocketAddr = listen
        .parse()
        .with_context(|| format!("listen {listen:?} is not ADDR:PORT"))?;
    let (Some(cert), Some(key)) = (cfg.cert, cfg.key) else {
        bail!(
            "[serve] in {} needs cert and key: the server's certificate (lifeboat ca issue DIR \
             --name HOST --role server)",
            path.display()
        );
    };
    let tokens = cfg
        .tokens
        .unwrap_or_else(|| PathBuf::from(auth::TOKENS_FILE));
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS setup")?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            // A client without a certificate may still come in with a token.
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(ca)?),
                provider(),
            )
            .allow_unauthenticated()
            .build()
            .with_context(|| format!("client_ca '{}' cannot verify clients", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let tls = builder
        .with_single_cert(load_certs(&cert)?, load_key(&key)?)
        .with_context(|| {
            format!(
                "'{}' and '{}' do not make a server certificate",
                cert.display(),
                key.display()
            )
        })?;
    let max = cfg.max_concurrent.unwrap_or(DEFAULT_MAX).max(1);
    let server = Arc::new(Server {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
        tokens,
        slots: Arc::new(Semaphore::new(max)),
        max,
        program: std::env::current_exe().context("cannot find this program (/proc/self/exe)")?,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        eprintln!(
            "lifeboat serve: listening on {listen} ({} at once; clients by {}tokens of '{}')",
            max,
            if cfg.client_ca.is_some() {
                "certificate or "
            } else {
                ""
            },
            server.tokens.display()
        );
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("lifeboat serve: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let server = server.clone();
            tokio::spawn(async move { server.handle(stream, peer).await });
        }
    })
}

/// Where the refusal of a request goes: its status and the log line.
fn refusal(code: u8, message: String) -> Status {
    Status { code, message }
}

impl Server {
    async fn handle(&self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let started = Instant::now();
        let tls = match tokio::time::timeout(HANDSHAKE, self.acceptor.accept(stream)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                eprintln!("lifeboat serve: {peer}: refused in the TLS handshake: {e}");
                return;
            }
            Err(_) => {
                eprintln!("lifeboat serve: {peer}: no TLS handshake within {HANDSHAKE:?}");
                return;
            }
        };
        let cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.as_ref().to_vec());
        let (mut rd, mut wr) = tokio::io::split(tls);
        let request = match tokio::time::timeout(HANDSHAKE, read_frame(&mut rd)).await {
            Ok(Ok(Some((proto::REQUEST, p)))) => proto::from_json::<Request>("request", &p),
            Ok(Ok(_)) => {
                eprintln!("lifeboat serve: {peer}: no request");
                return;
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                eprintln!("lifeboat serve: {peer}: no request within {HANDSHAKE:?}");
                return;
            }
        };
        let outcome = match request {
            Ok(req) => self.serve(req, cert, peer, &mut rd, &mut wr).await,
            Err(e) => (
                None,
                String::new(),
                refusal(crate::exit::ERROR, format!("bad request: {e}")),
            ),
        };
        let (who, what, status) = outcome;
        let who = who.map_or_else(|| "unauthenticated".to_string(), |w| w.to_string());
        eprintln!(
            "lifeboat serve: {peer}: {who}: {what}: status {} ({:.1} s){}",
            status.code,
            started.elapsed().as_secs_f64(),
            if status.message.is_empty() {
                String::new()
            } else {
                format!(": {}", status.message)
            }
        );
        let _ = write_frame(&mut wr, proto::STATUS, &proto::to_json(&status)).await;
        let _ = wr.shutdown().await;
    }

    /// Authenticates, authorizes and runs one request: (who, what, how it ended).
    async fn serve<R, W>(
        &self,
        req: Request,
        cert: Option<Vec<u8>>,
        peer: SocketAddr,
        rd: &mut R,
        wr: &mut W,
    ) -> (Option<Identity>, String, Status)
    where
        R: tokio::io::AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        let what = req.words.join(" ");
        let ours = env!("CARGO_PKG_VERSION");
        let mm = crate::remote::major_minor;
        if mm(&req.version).is_none() || mm(&req.version) != mm(ours) {
            return (None, what, refusal(crate::exit::ERROR, format!(
                "this server runs Lifeboat {ours} and the client {:?}: the major.minor versions must match",
                req.version
            )));
        }
        let who = match (cert, &req.token) {
            (Some(der), _) => auth::of_certificate(&der),
            (None, Some(token)) => match auth::of_token(&self.tokens, token) {
                Ok(Some(id)) => Ok(id),
                Ok(None) => {
                    Err("the token is not known to this server (wrong, or removed)".to_string())
                }
                Err(e) => {
                    eprintln!("lifeboat serve: {peer}: {e:#}");
                    Err("the server cannot read its tokens file (its log says why)".to_string())
                }
            },
            (None, None) => Err(
                "no client certificate and no token: give cert= and key=, or token-file="
                    .to_string(),
            ),
        };
        let who = match who {
            Ok(w) => w,
            Err(m) => {
                return (
                    None,
                    what,
                    refusal(crate::exit::ERROR, format!("refused: {m}")),
                )
            }
        };
        // The words must be one of the four commands, with the archive streamed here.
        let mut argv = vec!["lifeboat".to_string()];
        argv.extend(req.words.iter().cloned());
        let command = match Cli::try_parse_from(&argv) {
            Ok(cli) => cli.command,
            Err(e) => {
                let m = e.to_string();
                let first = m.lines().next().unwrap_or_default().to_string();
                return (
                    Some(who),
                    what,
                    refusal(crate::exit::ERROR, format!("bad command: {first}")),
                );
            }
        };
        let upload = match &command {
            Command::HostBackup(a) if a.file_name.as_os_str() == "-" => false,
            // Only an upload: a repository generation (`--repo`) is staged on the host itself.
            Command::HostRestore(a)
                if a.file_name.as_deref() == Some(std::path::Path::new("-"))
                    && a.repo.repo.is_none() =>
            {
                true
            }
            Command::Verify(a) => a.archive.file_name.is_some(),
            Command::List(_) => false,
            _ => {
                return (Some(who), what, refusal(crate::exit::ERROR,
                    "refused: this server answers host-backup, host-restore, list and verify only (archives as file-name=-)".into()));
            }
        };
        if command.remote().is_some()
            || matches!(&command, Command::Verify(a) if a.archive.file_name.as_ref().is_some_and(|f| f.as_os_str() != "-"))
        {
            return (
                Some(who),
                what,
                refusal(
                    crate::exit::ERROR,
                    "refused: host= and file names of this host are not served".into(),
                ),
            );
        }
        if !who.role.allows(&command) {
            return (Some(who.clone()), what, refusal(crate::exit::ERROR, format!(
                "refused: {} may not run {} (a {} credential); ask for a restore or admin credential",
                who.name,
                req.words.iter().find(|w| !w.starts_with('-')).map_or("this", String::as_str),
                who.role.name()
            )));
        }
        let Ok(_slot) = self.slots.clone().try_acquire_owned() else {
            return (
                Some(who),
                what,
                refusal(
                    crate::exit::BUSY,
                    format!(
                "busy: this server already runs {} requests (max_concurrent); try again later",
                self.max
            ),
                ),
            );
        };
        eprintln!("lifeboat serve: {peer}: {who}: {what}: started");
        let status = self.run_child(&req.words, upload, rd, wr).await;
        (Some(who), what, status)
    }

    /// Runs `lifeboat WORDS`, its stdio carried in frames.
    async fn run_child<R, W>(
        &self,
        words: &[String],
        upload: bool,
        rd: &mut R,
        wr: &mut W,
    ) -> Status
    where
        R: tokio::io::AsyncRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin,
    {
        let mut child = match tokio::process::Command::new(&self.program)
            .args(words)
            .stdin(if upload {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                return refusal(
                    crate::exit::ERROR,
                    format!("cannot run {}: {e}", self.program.display()),
                )
            }
        };
        let (tx, mut frames) = mpsc::channel::<(u8, Vec<u8>)>(16);
        let pumps = [
            child.stdout.take().map(|s| {
                (
                    proto::DATA,
                    Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                )
            }),
            child.stderr.take().map(|s| {
                (
                    proto::STDERR,
                    Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                )
            }),
        ];
        for (kind, mut from) in pumps.into_iter().flatten() {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; proto::CHUNK];
                loop {
                    match from.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.send((kind, buf[..n].to_vec())).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        drop(tx);
        let mut stdin = child.stdin.take();
        let mut cut = false;
        let mut send_failed = false;
        // Until the child's stdout and stderr are drained: relay them, and feed the upload.
        loop {
            tokio::select! {
                frame = frames.recv() => match frame {
                    Some((kind, data)) => {
                        if !send_failed && write_frame(wr, kind, &data).await.is_err() {
                            // The client went away: the child is ended below.
                            send_failed = true;
                            let _ = child.start_kill();
                        }
                    }
                    None => break,
                },
                frame = read_frame(rd), if stdin.is_some() => match frame {
                    Ok(Some((proto::DATA, data))) => {
                        if let Some(s) = stdin.as_mut() {
                            if s.write_all(&data).await.is_err() {
                                // The far command stopped reading: its status says why.
                                stdin = None;
                            }
                        }
                    }
                    Ok(Some((proto::END, _))) => {
                        stdin = None;
                    }
                    _ => {
                        // Cut before END: the child sees its input end early (a truncated
                        // archive, never committed) and is ended, to be sure.
                        cut = true;
                        stdin = None;
                        let _ = child.start_kill();
                    }
                },
            }
        }
        let code = match child.wait().await {
            Ok(s) => s.code().and_then(|c| u8::try_from(c).ok()),
            Err(_) => None,
        };
        match (cut, send_failed, code) {
            (true, _, _) => refusal(
                crate::exit::ERROR,
                "the upload was cut before its end: nothing was committed".into(),
            ),
            (_, true, _) => refusal(
                crate::exit::ERROR,
                "the client went away; the command was ended".into(),
            ),
            (_, _, Some(c)) => Status {
                code: c,
                message: String::new(),
            },
            (_, _, None) => refusal(
                crate::exit::ERROR,
                "the command was ended by a signal".into(),
            ),
        }
    }
}
