//! Writes the pax archive. (Owned by the archive-format work.)
