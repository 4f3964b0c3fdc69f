//! cnnlab-augment
