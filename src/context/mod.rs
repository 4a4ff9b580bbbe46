//! The build context: a filtered walk that honours `.dockerignore`.
