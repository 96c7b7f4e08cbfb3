//! `lifeboat ca init|issue`: the small certificate authority of `lifeboat serve` (rcgen).
//! DIR holds ca.pem (given to servers as `client_ca` and to clients as `ca=`) and ca.key
//! (mode 600; keep it off the hosts). `issue` writes NAME.pem and NAME.key beside them: a
//! client certificate whose OU is its role, or (`--role server`) the server's certificate for
//! the host name or address NAME. There is no revocation list: remove a leaked certificate's
//! trust by making a new CA, or give short `--days`.

use crate::cli::{CaCommand, Role};
use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitCode;
use time::{Duration, OffsetDateTime};

fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create '{}' (an existing file is never overwritten: remove it first)",
                path.display()
            )
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write '{}'", path.display()))
}

fn validity(params: &mut CertificateParams, days: u32, backdate_days: u32) {
    let start =
        OffsetDateTime::now_utc() - Duration::days(i64::from(backdate_days)) - Duration::minutes(5);
    params.not_before = start;
    params.not_after = start + Duration::days(i64::from(days));
}

pub fn run(cmd: CaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CaCommand::Init { dir, name, days } => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create '{}'", dir.display()))?;
            let key = KeyPair::generate().context("cannot make the CA's key")?;
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, name);
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            validity(&mut params, days, 0);
            let cert = params
                .self_signed(&key)
                .context("cannot sign the CA certificate")?;
            write_new(&dir.join("ca.key"), &key.serialize_pem(), 0o600)?;
            write_new(&dir.join("ca.pem"), &cert.pem(), 0o644)?;
            eprintln!(
                "lifeboat: CA made in '{}': ca.pem goes to servers (client_ca) and clients (ca=); keep ca.key private",
                dir.display()
            );
        }
        CaCommand::Issue {
            dir,
            name,
            role,
            days,
            backdate_days,
        } => {
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                bail!("--name {name:?} must be a plain name (it names the files NAME.pem and NAME.key)");
            }
            let read = |f: &str| {
                let p = dir.join(f);
                std::fs::read_to_string(&p).with_context(|| {
                    format!(
                        "cannot read '{}': make the CA with `lifeboat ca init {}`",
                        p.display(),
                        dir.display()
                    )
                })
            };
            let ca_key = KeyPair::from_pem(&read("ca.key")?).context("ca.key is not a key")?;
            let ca_params = CertificateParams::from_ca_cert_pem(&read("ca.pem")?)
                .context("ca.pem is not a CA certificate")?;
            let ca = ca_params
                .self_signed(&ca_key)
                .context("ca.key does not go with ca.pem")?;
            let sans = if role == Role::Server {
                vec![name.clone()]
            } else {
                Vec::new()
            };
            let mut params = CertificateParams::new(sans)
                .with_context(|| format!("{name:?} is no host name or address"))?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, name.clone());
            dn.push(DnType::OrganizationalUnitName, role.name());
            params.distinguished_name = dn;
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![if role == Role::Server {
                ExtendedKeyUsagePurpose::ServerAuth
            } else {
                ExtendedKeyUsagePurpose::ClientAuth
            }];
            validity(&mut params, days, backdate_days);
            let key = KeyPair::generate().context("cannot make the key")?;
            let cert = params
                .signed_by(&key, &ca, &ca_key)
                .context("cannot sign the certificate")?;
            write_new(
                &dir.join(format!("{name}.key")),
                &key.serialize_pem(),
                0o600,
            )?;
            write_new(&dir.join(format!("{name}.pem")), &cert.pem(), 0o644)?;
            eprintln!(
                "lifeboat: issued {name} ({}, {days} days): '{}' and '{}'",
                role.name(),
                dir.join(format!("{name}.pem")).display(),
                dir.join(format!("{name}.key")).display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
