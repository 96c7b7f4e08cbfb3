//! The backup store in the backup partition: generations, staging, atomic commit, lock,
//! journal, pruning. (Owned by the store work.)
