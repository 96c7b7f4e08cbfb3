//! modules.alias parsing and modalias matching, used by coldplug in the recovery image.
