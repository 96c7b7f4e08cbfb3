//! `host=H transport=tls`: the client of `lifeboat serve`. Same shape as the ssh transport
//! ([`crate::remote`]): the far side runs our words with `--file-name=-`, the archive streams
//! to this machine's file (written as `F.partial`, renamed when the far side exits 0 or 1) or
//! from it; the far messages are printed here and the far exit status is ours.

use super::proto::{self, read_frame, write_frame, Request, Status};
use crate::cli::{Command, RemoteArgs};
use crate::cmd::host_backup::{destination, Destination};
use crate::remote::{far_words_of_this_run, stream_of, Stream};
use crate::ui::Bar;
use anyhow::{bail, Context};
use lifeboat_core::progress::Progress;
use rustls::pki_types::ServerName;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// H or H:PORT (an IPv6 address in brackets: [::1]:7443).
fn host_port(h: &str) -> anyhow::Result<(String, u16)> {
    if let Some(rest) = h.strip_prefix('[') {
        let (addr, tail) = rest
            .split_once(']')
            .with_context(|| format!("host={h:?}: an IPv6 address ends with ]"))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().with_context(|| format!("host={h:?}: bad port"))?,
            None => super::DEFAULT_PORT,
        };
        return Ok((addr.to_string(), port));
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((
            host.to_string(),
            port.parse()
                .with_context(|| format!("host={h:?}: {port:?} is not a port"))?,
        )),
        _ => Ok((h.to_string(), super::DEFAULT_PORT)),
    }
}

/// What a failed TLS connection most likely means, for the person.
fn explain(e: &std::io::Error, host: &str) -> String {
    let text = e.to_string();
    let hint = if text.contains("CertificateExpired") || text.contains("Expired") {
        "a certificate has expired (the server's, or this client's as the server says): issue a new one with `lifeboat ca issue`"
    } else if text.contains("UnknownCA")
        || text.contains("UnknownIssuer")
        || text.contains("BadCertificate")
        || text.contains("DecryptError")
    {
        "the certificates do not chain to the CAs each side trusts: the client's cert= must be issued by the server's client_ca, and ca= must be the CA of the server's certificate"
    } else if text.contains("NotValidForName") {
        "the server's certificate is not for this host name: issue it with --name as given in host="
    } else if text.contains("CertificateRequired") {
        "the server wants a client certificate: give cert= and key="
    } else {
        "check that `lifeboat serve` runs there and that ca=, cert=/key= or token-file= are right"
    };
    format!("TLS with {host} failed: {text}: {hint}")
}

pub fn run(command: &Command, remote: &RemoteArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let host_arg = remote.host.as_deref().unwrap_or_default();
    let (host, port) = host_port(host_arg)?;
    if host.is_empty() {
        bail!("host= is empty: give host=NAME or host=NAME:PORT");
    }
    if !remote.ssh_options.is_empty() {
        bail!("ssh-option= is for transport=ssh, not transport=tls");
    }
    let ca = remote.ca.as_deref().context(
        "transport=tls needs ca=FILE: the CA certificate of the server's certificate (ca.pem of `lifeboat ca init`)",
    )?;
    let token = match (&remote.cert, &remote.key, &remote.token_file) {
        (Some(_), Some(_), None) => None,
        (None, None, Some(f)) => {
            let t = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the token file '{}'", f.display()))?;
            let t = t.trim().to_string();
            if t.is_empty() {
                bail!("the token file '{}' is empty", f.display());
            }
            Some(t)
        }
        _ => bail!(
            "transport=tls needs either cert=FILE and key=FILE (a certificate of `lifeboat ca \
             issue`) or token-file=FILE (a token of `lifeboat token add`), not both"
        ),
    };
    let builder = rustls::ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_root_certificates(super::roots(ca)?);
    let tls = match (&remote.cert, &remote.key) {
        (Some(c), Some(k)) => builder
            .with_client_auth_cert(super::load_certs(c)?, super::load_key(k)?)
            .with_context(|| {
                format!(
                    "'{}' and '{}' do not make a client certificate",
                    c.display(),
                    k.display()
                )
            })?,
        _ => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(host.clone())
        .with_context(|| format!("host={host:?} is no host name or address"))?;
    let stream = stream_of(command);
    let words = far_words_of_this_run(&stream)?;
    let dest = match &stream {
        Stream::Download(f) => Some(destination(f)?),
        _ => None,
    };
    let upload = match &stream {
        Stream::Upload(f) => Some(f.clone()),
        _ => None,
    };
    let request = Request {
        version: env!("CARGO_PKG_VERSION").to_string(),
        words,
        token,
    };
    let bar = Bar::leaked(quiet, None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(talk(
        Arc::new(tls),
        name,
        (host.as_str(), port),
        request,
        upload.as_deref(),
        dest.as_ref(),
        bar,
    ));
    bar.finish();
    // host-backup into a file: renamed into place only when complete.
    if let Some(d) = &dest {
        d.finish(matches!(&result, Ok(s) if s.code <= 1))?;
    }
    let status = result?;
    if !status.message.is_empty() {
        eprintln!("lifeboat: {host}: {}", status.message);
    }
    Ok(ExitCode::from(status.code))
}

async fn talk(
    tls: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    (host, port): (&str, u16),
    request: Request,
    upload: Option<&Path>,
    dest: Option<&Destination>,
    bar: &'static Bar,
) -> anyhow::Result<Status> {
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .with_context(|| {
            format!("cannot connect to {host}:{port}: is `lifeboat serve` running there?")
        })?;
    let conn = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| anyhow::anyhow!(explain(&e, host)))?;
    let (mut rd, mut wr) = tokio::io::split(conn);
    let sent = match write_frame(&mut wr, proto::REQUEST, &proto::to_json(&request)).await {
        Ok(()) => wr.flush().await,
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        // Under TLS 1.3 the server judges our certificate after the handshake: its alert
        // (expired, unknown CA) is what there is to read, not our broken pipe.
        let why = match read_frame(&mut rd).await {
            Err(proto::ProtoError::Io(alert)) => alert,
            _ => e,
        };
        bail!(explain(&why, host));
    }
    let mut out: Box<dyn Write> = match dest {
        Some(Destination::Stdout) | None => Box::new(std::io::stdout().lock()),
        Some(Destination::Node(_, f)) => {
            Box::new(f.try_clone().context("cannot use the output file")?)
        }
        Some(Destination::File { partial, .. }) => Box::new(
            File::create(partial)
                .with_context(|| format!("cannot create '{}'", partial.display()))?,
        ),
    };
    // The upload runs beside the reading of the answer (the server may answer early).
    let sender = match upload {
        Some(from) => {
            let from = from.to_path_buf();
            Some(tokio::spawn(async move {
                let mut input: Box<dyn tokio::io::AsyncRead + Unpin + Send> =
                    if from.as_os_str() == "-" {
                        bar.set_total(None);
                        Box::new(tokio::io::stdin())
                    } else {
                        let f = tokio::fs::File::open(&from).await.with_context(|| {
                            format!("cannot open the archive '{}'", from.display())
                        })?;
                        bar.set_total(
                            f.metadata()
                                .await
                                .ok()
                                .filter(|m| m.is_file())
                                .map(|m| m.len()),
                        );
                        Box::new(f)
                    };
                let mut buf = vec![0u8; proto::CHUNK];
                loop {
                    let n = input
                        .read(&mut buf)
                        .await
                        .with_context(|| format!("reading '{}'", from.display()))?;
                    if n == 0 {
                        break;
                    }
                    write_frame(&mut wr, proto::DATA, &buf[..n]).await?;
                    bar.advance(n as u64);
                }
                write_frame(&mut wr, proto::END, &[]).await?;
                wr.flush().await?;
                anyhow::Ok(wr)
            }))
        }
        None => None,
    };
    let what = match dest {
        Some(Destination::File { partial, .. }) => format!("'{}'", partial.display()),
        Some(Destination::Node(n, _)) => format!("'{}'", n.display()),
        _ => "stdout".to_string(),
    };
    let status = loop {
        let frame = read_frame(&mut rd).await;
        match frame {
            Ok(Some((proto::DATA, data))) => {
                out.write_all(&data).with_context(|| format!("writing to {what}"))?;
                if dest.is_some() {
                    bar.advance(data.len() as u64);
                }
            }
            Ok(Some((proto::STDERR, data))) => {
                let mut e = std::io::stderr().lock();
                let _ = e.write_all(&data);
            }
            Ok(Some((proto::STATUS, data))) => break proto::from_json::<Status>("status", &data)?,
            Ok(Some((kind, _))) => bail!("{host} sent a frame of unknown kind {kind}: is it a `lifeboat serve` of this version?"),
            Ok(None) => bail!("{host} closed the connection before the far command finished: nothing it sent can be trusted; run the command again"),
            Err(proto::ProtoError::Io(e)) => bail!(explain(&e, host)),
            Err(e) => bail!("{host}: {e}"),
        }
    };
    out.flush().with_context(|| format!("writing to {what}"))?;
    if let Some(Destination::File { .. }) = dest {
        drop(out);
    }
    if let Some(Destination::File { partial, .. }) = dest {
        File::open(partial)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot sync '{}'", partial.display()))?;
    }
    if let Some(sender) = sender {
        if !sender.is_finished() {
            sender.abort();
            if status.code == 0 {
                bail!("{host} finished before the archive was sent in full: its verdict does not cover all of it");
            }
        } else if let Ok(Err(e)) = sender.await {
            if status.code == 0 {
                return Err(e.context(format!("sending the archive to {host}")));
            }
        }
    }
    Ok(status)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(host_port("dom0").unwrap(), ("dom0".into(), 7443));
        assert_eq!(
            host_port("127.0.0.1:9000").unwrap(),
            ("127.0.0.1".into(), 9000)
        );
        assert_eq!(host_port("[::1]:9").unwrap(), ("::1".into(), 9));
        assert_eq!(host_port("::1").unwrap(), ("::1".into(), 7443));
        assert!(host_port("h:x").is_err());
    }
}
