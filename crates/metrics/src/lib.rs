//! cnnlab-metrics
