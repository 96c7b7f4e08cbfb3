//! `lbtest-age-passphrase IN OUT LOG_N`: writes OUT, the age identity file IN encrypted with
//! the passphrase in $LBTEST_PASSPHRASE at scrypt work factor 2^LOG_N, as `age -p` makes it
//! (age picks LOG_N by timing; a test needs it fixed). Prints the seconds scrypt took.

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, log_n] = args.as_slice() else {
        bail!("usage: LBTEST_PASSPHRASE=... lbtest-age-passphrase IN OUT LOG_N");
    };
    let pass = std::env::var("LBTEST_PASSPHRASE").context("LBTEST_PASSPHRASE is not set")?;
    let log_n: u8 = log_n.parse().context("LOG_N is a number")?;
    let text = std::fs::read_to_string(input).with_context(|| format!("cannot read {input}"))?;
    let t = std::time::Instant::now();
    let data = lifeboat_repo::crypto::protect_identity(&text, &pass, log_n)?;
    std::fs::write(output, data).with_context(|| format!("cannot write {output}"))?;
    println!("scrypt 2^{log_n}: {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}
