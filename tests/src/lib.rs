//! Test tools shared by the integration tests and the shell-level tests: a fixture generator
//! that builds every case Lifeboat must keep, and a tree comparer that checks them.
