//! Reads the pax archive and plain tar archives. (Owned by the archive-format work.)
