//! `lifeboat-init`: PID 1 of the recovery image.

fn main() {
    println!("lifeboat-init {}", lifeboat_core::VERSION);
}
