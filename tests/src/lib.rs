//! Test tools shared by the integration tests and the shell-level tests: a fixture generator
//! that builds every case Lifeboat must keep ([`fixture`], binary `lbtest-fixture`), and a
//! tree comparer that checks them ([`compare`], binary `lbtest-compare`).

pub mod backup;
pub mod compare;
pub mod fixture;
pub mod hostile;
pub mod image;
pub mod sys;
