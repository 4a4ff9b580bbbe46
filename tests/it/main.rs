//! Integration tests: the real `rbuild` binary on real contexts and a real store,
//! checked with independent readers (umoci, skopeo, oci-image-tool) where installed.

mod add_git;
mod annotations;
mod archives;
mod build;
mod build_push;
mod cache;
mod commands;
mod compat;
mod config;
mod containerd;
mod crash;
mod devices;
mod foreign;
mod hostile;
mod image;
mod image_id;
mod inputs;
mod integrity;
mod limits;
mod mounts;
mod named_contexts;
mod network;
mod outputs;
mod parallel;
mod prune;
mod pushpull;
mod registry;
mod registry_auth;
mod rootless;
mod run;
mod secrets;
mod security;
mod snapshotter;
mod support;
mod tty;
