//! Runs the re-exec dispatch before the unit-test harness starts, so that the test
//! binary can serve as `/proc/self/exe` for the sandbox helper (the real binary does
//! the same from `main`). glibc passes `main`'s arguments to `.init_array` functions.

use std::ffi::CStr;

type InitFn = extern "C" fn(libc::c_int, *const *const libc::c_char, *const *const libc::c_char);

#[used]
#[link_section = ".init_array"]
static DISPATCH: InitFn = dispatch;

extern "C" fn dispatch(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
    _env: *const *const libc::c_char,
) {
    if argc < 1 || argv.is_null() {
        return;
    }
    // SAFETY: glibc calls `.init_array` functions with `main`'s argc and argv;
    // with argc >= 1, argv[0] is a valid NUL-terminated string (or null).
    let arg0 = unsafe {
        let p = *argv;
        if p.is_null() {
            return;
        }
        CStr::from_ptr(p)
    };
    if let Some(code) = crate::reexec::dispatch_name(arg0.to_bytes()) {
        std::process::exit(i32::from(code));
    }
}
