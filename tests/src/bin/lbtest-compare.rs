//! `lbtest-compare A B [--ignore PATH]...`: compares two trees (see lifeboat_tests::compare),
//! prints each difference, exits 1 when there is any, 2 on an error.

use lifeboat_tests::compare::{compare, CompareOptions};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut opts = CompareOptions::default();
    let mut trees: Vec<PathBuf> = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--ignore" {
            match args.next() {
                Some(p) => opts.ignore.push(p.into_vec()),
                None => return usage(),
            }
        } else {
            trees.push(PathBuf::from(a));
        }
    }
    let [a, b] = trees.as_slice() else {
        return usage();
    };
    match compare(a, b, &opts) {
        Ok(c) => {
            for d in &c.differences {
                println!("{d}");
            }
            if c.is_same() {
                println!("identical: {} entries compared", c.entries);
                ExitCode::SUCCESS
            } else {
                println!(
                    "{} differences in {} entries",
                    c.differences.len(),
                    c.entries
                );
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("lbtest-compare: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: lbtest-compare A B [--ignore PATH]...");
    ExitCode::from(2)
}
