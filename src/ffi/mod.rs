// SPDX-License-Identifier: GPL-2.0
//! The raw interface to C: the uAPI structures bindgen generates from the kernel we build against
//! (`generated/`), kernel declarations the kernel crate's bindings lack (`kernel_extra.h`), and
//! the C shim (`shim.c`) for static inlines and macros Rust cannot call.

/// A module of bindgen output, `include!`d from `$file` (relative to the file the macro is used
/// in), with the lints bindgen's output does not meet allowed; `$body` follows the include.
macro_rules! bindgen_module {
    ($(#[$meta:meta])* $vis:vis mod $name:ident = $file:literal; $($body:tt)*) => {
        #[allow(
            dead_code,
            non_camel_case_types,
            non_upper_case_globals,
            non_snake_case,
            clippy::all,
            clippy::ptr_as_ptr,
            clippy::ref_as_ptr,
            clippy::cast_lossless,
            clippy::as_underscore,
            clippy::ptr_cast_constness,
            clippy::undocumented_unsafe_blocks,
            unreachable_pub,
            unsafe_op_in_unsafe_fn
        )]
        $(#[$meta])*
        $vis mod $name {
            use kernel::ffi;
            include!($file);
            $($body)*
        }
    };
}
pub(crate) use bindgen_module;

pub(crate) mod kbind;
pub(crate) mod shim;
pub(crate) mod uapi;
