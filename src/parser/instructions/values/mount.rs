//! `RUN --mount=<spec>`: the typed mount and the defaults BuildKit applies to it.
//!
//! [`parse_mount`] mirrors BuildKit's `parseMount` (`instructions/commands_runmount.go`) on
//! already-expanded text: a CSV list of `key=value` fields, keys case-insensitive, read in
//! order (so `required,type=secret` fails: `required` is checked against the type set so
//! far, `bind`). After the fields it applies the same checks as BuildKit: `mode`/`uid`/`gid`
//! only on cache, secret and ssh mounts; `sharing` only on caches; a secret needs one of
//! `source`, `target`, `id`, and not both `source` and `id`, nor `from` or `sharing`.
//!
//! The read-only default is applied here (bind, secret and ssh read-only; cache and tmpfs
//! writable, unless `ro`/`rw` was given). The other defaults belong to BuildKit's dispatch
//! step; `mount_defaults` gives them as methods of [`Mount`] (cache id, sharing, secret id
//! and target, ssh id and socket path, file modes, the target under the workdir).
//!
//! Empty values (`target=`) mean "unset", as in BuildKit, except `env=` which asks for the
//! default variable name. Tmpfs sizes follow go-units' `RAMInBytes` (`64m`, `1.5GiB`, binary
//! multiples; see `size`).

use super::csv;
use super::error::{Error, FileInfoField, Result};
use super::golang::{parse_bool, parse_uint};
use super::mount_type::{MountType, Sharing};
use super::size::ram_in_bytes;
use super::suggest::closest;

/// One parsed `--mount` spec, with BuildKit's fields (`instructions.Mount`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mount {
    /// `type=`; bind when absent.
    pub kind: MountType,
    /// `from=`: stage or image providing the source (bind, cache).
    pub from: Option<String>,
    /// `source=`/`src=`: path in `from`, or the secret id.
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`: the mount point (see the accessors for defaults).
    pub target: Option<String>,
    /// Read-only, after BuildKit's per-type default.
    pub read_only: bool,
    /// `size=` of a tmpfs in bytes; `None` for no limit.
    pub size_limit: Option<u64>,
    /// `id=`: cache, secret or ssh id (see the accessors for defaults).
    pub id: Option<String>,
    /// `sharing=` of a cache, as written (see [`Mount::sharing_mode`]).
    pub sharing: Option<Sharing>,
    /// `required`: a missing secret or ssh agent fails the build.
    pub required: bool,
    /// `env=` of a secret: expose it as this variable (`Some("")`: BuildKit's default name).
    pub env: Option<String>,
    /// `mode=` (octal), for cache, secret and ssh mounts.
    pub mode: Option<u32>,
    /// `uid=`, for cache, secret and ssh mounts.
    pub uid: Option<u32>,
    /// `gid=`, for cache, secret and ssh mounts.
    pub gid: Option<u32>,
}

/// Parses one `--mount` value (already expanded).
pub fn parse_mount(value: &str) -> Result<Mount> {
    let fields = csv::fields(value).map_err(|reason| Error::Csv {
        what: "mounts",
        reason,
    })?;
    let mut mount = Mount::default();
    // True until `ro`/`rw` is given; the per-type default then applies.
    let mut read_only_auto = true;
    for field in &fields {
        apply_field(&mut mount, &mut read_only_auto, field)?;
    }
    if read_only_auto {
        mount.read_only = !matches!(mount.kind, MountType::Cache | MountType::Tmpfs);
    }
    validate(&mount)?;
    Ok(mount)
}

/// The mount type `type=` names.
fn mount_type(value: &str) -> Result<MountType> {
    MountType::from_name(value).ok_or_else(|| Error::UnsupportedMountType {
        value: value.to_owned(),
        suggestion: closest(value, &MountType::NAMES),
    })
}

/// The sharing mode `sharing=` names.
fn sharing(value: &str) -> Result<Sharing> {
    Sharing::from_name(value).ok_or_else(|| Error::UnsupportedSharing {
        value: value.to_owned(),
        suggestion: closest(value, &Sharing::NAMES),
    })
}

fn apply_field(mount: &mut Mount, read_only_auto: &mut bool, field: &str) -> Result<()> {
    let Some((key, value)) = field.split_once('=') else {
        return apply_bare_word(mount, read_only_auto, field);
    };
    let key = key.to_lowercase();
    let text = || (!value.is_empty()).then(|| value.to_owned());
    match key.as_str() {
        "type" => mount.kind = mount_type(value)?,
        "from" => mount.from = text(),
        "source" | "src" => mount.source = text(),
        "target" | "dst" | "destination" => mount.target = text(),
        "readonly" | "ro" => {
            mount.read_only = bool_value(&key, value)?;
            *read_only_auto = false;
        }
        "readwrite" | "rw" => {
            mount.read_only = !bool_value(&key, value)?;
            *read_only_auto = false;
        }
        "required" => {
            only_for(&key, mount.kind, &[MountType::Secret, MountType::Ssh])?;
            mount.required = bool_value(&key, value)?;
        }
        "size" => {
            only_for(&key, mount.kind, &[MountType::Tmpfs])?;
            let size = ram_in_bytes(value).ok_or_else(|| invalid_value(&key, value))?;
            mount.size_limit = (size > 0).then_some(size);
        }
        "id" => mount.id = text(),
        "sharing" => mount.sharing = Some(sharing(value)?),
        "mode" => mount.mode = Some(file_info(FileInfoField::Mode, value, 8)?),
        "uid" => mount.uid = Some(file_info(FileInfoField::Uid, value, 10)?),
        "gid" => mount.gid = Some(file_info(FileInfoField::Gid, value, 10)?),
        "env" => mount.env = Some(value.to_owned()),
        _ => {
            return Err(Error::UnknownKey {
                suggestion: closest(&key, &ALL_KEYS),
                key,
                field: field.to_owned(),
            })
        }
    }
    Ok(())
}

/// The keys BuildKit suggests from, in its order.
const ALL_KEYS: [&str; 19] = [
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// A field without `=`: only the boolean keys may be written bare.
fn apply_bare_word(mount: &mut Mount, read_only_auto: &mut bool, field: &str) -> Result<()> {
    let key = field.to_lowercase();
    match key.as_str() {
        "readonly" | "ro" => mount.read_only = true,
        "readwrite" | "rw" => mount.read_only = false,
        "required" => {
            only_for(&key, mount.kind, &[MountType::Secret, MountType::Ssh])?;
            mount.required = true;
            return Ok(());
        }
        _ => {
            return Err(Error::NotKeyValue {
                field: field.to_owned(),
            })
        }
    }
    *read_only_auto = false;
    Ok(())
}

fn only_for(key: &str, kind: MountType, allowed: &[MountType]) -> Result<()> {
    if allowed.contains(&kind) {
        return Ok(());
    }
    Err(Error::KeyNotForMountType {
        key: key.to_owned(),
        mount_type: kind,
    })
}

fn invalid_value(key: &str, value: &str) -> Error {
    Error::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

fn bool_value(key: &str, value: &str) -> Result<bool> {
    parse_bool(value).ok_or_else(|| invalid_value(key, value))
}

fn file_info(field: FileInfoField, value: &str, radix: u32) -> Result<u32> {
    parse_uint(value, radix, 32)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| Error::InvalidFileInfo {
            field,
            value: value.to_owned(),
        })
}

/// The checks BuildKit runs once all fields are read, in its order.
fn validate(mount: &Mount) -> Result<()> {
    let kind = mount.kind;
    if !matches!(kind, MountType::Cache | MountType::Secret | MountType::Ssh) {
        let given = [
            (FileInfoField::Mode, mount.mode.is_some()),
            (FileInfoField::Uid, mount.uid.is_some()),
            (FileInfoField::Gid, mount.gid.is_some()),
        ];
        if let Some(&(field, _)) = given.iter().find(|(_, set)| *set) {
            return Err(Error::FileInfoNotAllowed {
                field,
                mount_type: kind,
            });
        }
    }
    if kind == MountType::Secret {
        if mount.from.is_some() {
            return Err(Error::SecretWithFrom);
        }
        if mount.sharing.is_some() {
            return Err(Error::SecretWithSharing);
        }
        if mount.source.is_none() && mount.target.is_none() && mount.id.is_none() {
            return Err(Error::SecretWithoutSource);
        }
        if mount.source.is_some() && mount.id.is_some() {
            return Err(Error::SecretSourceAndId);
        }
    }
    if mount.sharing.is_some() && kind != MountType::Cache {
        return Err(Error::SharingNotForMountType { mount_type: kind });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(value: &str) -> Mount {
        match parse_mount(value) {
            Ok(m) => m,
            Err(e) => panic!("{value}: {e}"),
        }
    }

    fn message(value: &str) -> String {
        match parse_mount(value) {
            Ok(m) => panic!("{value}: unexpectedly parsed as {m:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bind_defaults_and_aliases() {
        let m = mount("target=/src");
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.read_only);
        assert_eq!(m.target.as_deref(), Some("/src"));
        let m = mount("type=BIND,SRC=a,dst=/b,from=stage,rw");
        assert_eq!(
            (m.source.as_deref(), m.target.as_deref()),
            (Some("a"), Some("/b"))
        );
        assert_eq!(m.from.as_deref(), Some("stage"));
        assert!(!m.read_only);
        assert!(!mount("destination=/b,readwrite=true").read_only);
        assert!(mount("target=/b,readwrite=false").read_only);
        assert!(mount("target=/b,rw,ro").read_only);
        assert!(!mount("target=/b,ro=0").read_only);
        assert_eq!(mount("target=/b,target=").target, None);
        assert_eq!(mount("\"target=/a,b\"").target.as_deref(), Some("/a,b"));
        assert_eq!(
            mount("type=bind,id=ignored,target=/x").id.as_deref(),
            Some("ignored")
        );
    }

    #[test]
    fn tmpfs_size() {
        let m = mount("type=tmpfs,target=/t,size=64m");
        assert_eq!(m.size_limit, Some(64 << 20));
        assert!(!m.read_only);
        assert_eq!(mount("type=tmpfs,target=/t,size=0").size_limit, None);
        assert_eq!(m.file_mode(), None);
        assert_eq!(
            message("type=tmpfs,size=lots"),
            "invalid value for size: lots"
        );
        assert_eq!(
            message("type=cache,size=1"),
            "unexpected key 'size' for mount type 'cache'"
        );
    }

    #[test]
    fn field_errors() {
        assert_eq!(message(""), "failed to parse csv mounts: EOF");
        assert_eq!(
            message("target=/a\"b"),
            "failed to parse csv mounts: parse error on line 1, column 10: bare \" in non-quoted-field"
        );
        assert_eq!(
            message("target"),
            "invalid field 'target' must be a key=value pair"
        );
        assert_eq!(
            message("required"),
            "unexpected key 'required' for mount type 'bind'"
        );
        assert_eq!(
            message("required,type=secret"),
            "unexpected key 'required' for mount type 'bind'"
        );
        assert_eq!(
            message("type=cache,required=true"),
            "unexpected key 'required' for mount type 'cache'"
        );
        assert_eq!(message("type=volume"), r#"unsupported mount type "volume""#);
        assert_eq!(
            message("type=cahce"),
            r#"unsupported mount type "cahce" (did you mean cache?)"#
        );
        assert_eq!(
            message("type=cache,sharing=privat"),
            r#"unsupported sharing value "privat" (did you mean private?)"#
        );
        assert_eq!(message("ro=maybe"), "invalid value for ro: maybe");
        assert_eq!(message("RW=2"), "invalid value for rw: 2");
        assert_eq!(
            message("type=secret,id=a,required=no"),
            "invalid value for required: no"
        );
        assert_eq!(
            message("type=cache,mode=0800"),
            "invalid value 0800 for mode"
        );
        assert_eq!(message("type=cache,uid=-1"), "invalid value -1 for uid");
        assert_eq!(
            message("type=cache,gid=4294967296"),
            "invalid value 4294967296 for gid"
        );
        assert_eq!(
            message("taget=/x"),
            "unexpected key 'taget' in 'taget=/x' (did you mean target?)"
        );
        assert_eq!(
            message("Volume=/x"),
            "unexpected key 'volume' in 'Volume=/x'"
        );
    }

    #[test]
    fn validation_errors() {
        assert_eq!(
            message("target=/x,mode=0644"),
            r#"mode not allowed for "bind" type mounts"#
        );
        assert_eq!(
            message("type=tmpfs,uid=1"),
            r#"uid not allowed for "tmpfs" type mounts"#
        );
        assert_eq!(
            message("type=tmpfs,gid=1"),
            r#"gid not allowed for "tmpfs" type mounts"#
        );
        assert_eq!(
            message("type=secret,id=a,from=x"),
            "secret mount should not have a from"
        );
        assert_eq!(
            message("type=secret,id=a,sharing=shared"),
            "secret mount should not define sharing"
        );
        assert_eq!(
            message("type=secret"),
            "invalid secret mount. one of source, target required"
        );
        assert_eq!(
            message("type=secret,env=X"),
            "invalid secret mount. one of source, target required"
        );
        assert_eq!(
            message("type=secret,src=a,id=b"),
            "both source and id can't be set"
        );
        assert_eq!(
            message("target=/x,sharing=private"),
            "invalid cache sharing set for bind mount"
        );
        assert_eq!(
            message("type=ssh,sharing=locked"),
            "invalid cache sharing set for ssh mount"
        );
    }
}
